//! `esdb-double`: starts a double, prints its connection string on stdout, serves until killed.
//! For checking the double with other clients (`tests/python/check_double.py`) and manual use.

use std::io::Write;

#[tokio::main]
async fn main() {
    let double = esdb_double::Double::start().await;
    let mut stdout = std::io::stdout();
    // The caller reads this one line to learn where to connect; nothing else goes to stdout.
    let _ = writeln!(stdout, "{}", double.url());
    let _ = stdout.flush();
    let _ = tokio::signal::ctrl_c().await;
    drop(double);
}
