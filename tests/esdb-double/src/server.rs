//! The listener: HTTP/2 connections on 127.0.0.1, each served by hyper with the tonic router.
//! The accept loop and every connection are tasks the double owns, so stopping really stops:
//! the port is closed, every connection is dropped (clients see the transport fail, as when a
//! node dies), and calls still in progress are cancelled with them.

use std::io;
use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tonic::service::Routes;

use crate::deadline::Deadlines;
use crate::quick_ack::QuickAck;

/// A serving listener; `stop` (or dropping it) ends it.
pub(crate) struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Closes the port and drops every connection; returns once they are gone.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Aborting the accept loop drops its set of connections, which aborts them too.
        self.task.abort();
    }
}

/// Binds `addr` with `SO_REUSEADDR`, so a restarted double gets its port back at once even
/// while closed connections linger in TIME_WAIT.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

pub(crate) fn serve(listener: TcpListener, routes: Routes) -> Running {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let service = TowerToHyperService::new(Deadlines::new(routes.clone()));
                        connections.spawn(async move {
                            let served = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .timer(TokioTimer::new())
                                .serve_connection(TokioIo::new(QuickAck(stream)), service)
                                .await;
                            if let Err(e) = served {
                                tracing::debug!(error = %e, "esdb double: connection ended");
                            }
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "esdb double: accept failed"),
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    });
    Running {
        stop: Some(stop),
        task,
    }
}
