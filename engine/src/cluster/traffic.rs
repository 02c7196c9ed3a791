//! What timely's sockets read and write, counted: the cluster's bytes exchanged.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use timely::communication::allocator::zero_copy::stream::Stream;

/// Bytes timely exchanged with the other processes, counted on the sockets (timely's message
/// headers and serialized data; not the TCP/IP headers, not the handshake).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes written to peers.
    pub sent: AtomicU64,
    /// Bytes read from peers.
    pub received: AtomicU64,
}

/// A socket that counts what timely reads and writes.
pub(super) struct Counted {
    pub(super) stream: TcpStream,
    pub(super) traffic: Arc<Traffic>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.traffic.received.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.traffic.sent.fetch_add(n as u64, Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Stream for Counted {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(Counted {
            stream: self.stream.try_clone()?,
            traffic: self.traffic.clone(),
        })
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.stream.set_nonblocking(nonblocking)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream.shutdown(how)
    }
}
