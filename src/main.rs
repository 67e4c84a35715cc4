//! The dobrobot binary: everything is in the library; see `cli`.

fn main() -> std::process::ExitCode {
    dobrobot::cli::main()
}
