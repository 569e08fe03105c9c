//! Serving HTTP on the engine's commit thread (`DABBA_WORKERS=0`).
//!
//! actix-server runs connections on worker threads of its own, so every request reaches the
//! order actors, the writer and the sockets' queues on the commit thread through a wake-up of
//! that thread, and its answer comes back through a wake-up of the worker: on two shared cores
//! switching threads was a fifth of the server's CPU (BENCHMARKS.md, issue 9, eighth pass).
//! Here the listener is accepted on the commit thread itself and each connection is served
//! there by actix-http, the same service actix-web's own server builds.

use std::any::Any;
use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use actix_http::{Extensions, HttpService, Request, Response, body::MessageBody};
use actix_rt::ArbiterHandle;
use actix_rt::net::TcpStream;
use actix_service::{IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::AppConfig;
use actix_web::error::Error;
use tokio::sync::{Notify, oneshot, watch};

/// How long a refused `accept` (out of files, say) backs off before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running inline server: stop it, or wait for it to stop.
pub struct InlineServer {
    stop: watch::Sender<bool>,
    done: oneshot::Receiver<()>,
}

impl InlineServer {
    /// Stops accepting; connections already open finish on their own.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// A handle that stops the server from elsewhere.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Resolves once the accept loop has ended.
    pub async fn stopped(self) {
        let _ = self.done.await;
    }
}

/// Serves `listener` on `thread` with the app `factory` builds (once, on that thread).
/// `on_connect` sees every new connection, as actix-web's `HttpServer::on_connect` does; at
/// `max_connections` open, accepting pauses until one closes (before the process runs out of
/// files, not after).
pub fn serve<F, I, S, B>(
    thread: &ArbiterHandle,
    listener: std::net::TcpListener,
    factory: F,
    on_connect: fn(&dyn Any, &mut Extensions),
    max_connections: usize,
) -> io::Result<InlineServer>
where
    F: FnOnce() -> I + Send + 'static,
    I: 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop, stopping) = watch::channel(false);
    let (finished, done) = oneshot::channel();
    // The service is built and polled on the thread itself (it is not `Send`).
    let started = thread.spawn_fn(move || {
        let limits = Limits {
            addr,
            on_connect,
            max_connections: max_connections.max(1),
        };
        actix_rt::spawn(accept_loop(listener, limits, factory, stopping, finished));
    });
    if !started {
        return Err(io::Error::other("the commit thread has stopped"));
    }
    Ok(InlineServer { stop, done })
}

/// What the accept loop is told besides the app.
struct Limits {
    addr: std::net::SocketAddr,
    on_connect: fn(&dyn Any, &mut Extensions),
    max_connections: usize,
}

/// Open connections, and a wake-up for an accept loop paused at the cap.
#[derive(Default)]
struct Open {
    count: Cell<usize>,
    closed: Notify,
}

async fn accept_loop<F, I, S, B>(
    listener: std::net::TcpListener,
    limits: Limits,
    factory: F,
    mut stopping: watch::Receiver<bool>,
    finished: oneshot::Sender<()>,
) where
    F: FnOnce() -> I,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    let listener = match actix_rt::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, "inline server: the listener could not be registered");
            return;
        }
    };
    let app = factory()
        .into_factory()
        .map_err(|err| err.into().error_response());
    let on_connect = limits.on_connect;
    let http = HttpService::build()
        .local_addr(limits.addr)
        .on_connect_ext(move |io: &TcpStream, ext: &mut Extensions| on_connect(io as &dyn Any, ext))
        .finish(map_config(app, |_| AppConfig::default()))
        .tcp();
    let service = match http.new_service(()).await {
        Ok(service) => Rc::new(service),
        Err(()) => {
            tracing::error!("inline server: the app could not be built");
            return;
        }
    };
    let open = Rc::new(Open::default());
    loop {
        if open.count.get() >= limits.max_connections {
            tokio::select! {
                () = open.closed.notified() => continue,
                _ = stopping.changed() => break,
            }
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (service, open) = (service.clone(), open.clone());
                    open.count.set(open.count.get() + 1);
                    actix_rt::spawn(async move {
                        let _ = service.call(stream).await;
                        open.count.set(open.count.get() - 1);
                        open.closed.notify_one();
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "inline server: accept failed; backing off");
                    actix_rt::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            _ = stopping.changed() => break,
        }
    }
    let _ = finished.send(());
}
