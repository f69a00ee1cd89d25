//! roundtrip-tokio: bench/roundtrip on tokio, the runtime of the BUS/RT reference broker.
//! The same frames and acks at both ends, over a UNIX socket:
//!
//!     roundtrip-tokio -listen PATH
//!     roundtrip-tokio -dial PATH WORKERS ROUNDTRIPS
//!
//! What it reaches bounds from above what a broker on tokio, doing more than acknowledge,
//! could reach on the same machine.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const HEADER_LEN: usize = 9; // client -> broker frame header (WIRE.md §3)

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[1..] {
        ["-listen", path] => listen(path).await,
        ["-dial", path, w, n] => dial(path, w.parse().expect("WORKERS"), n.parse().expect("ROUNDTRIPS")).await,
        _ => {
            eprintln!("usage: roundtrip-tokio -listen PATH | roundtrip-tokio -dial PATH WORKERS ROUNDTRIPS");
            std::process::exit(2);
        }
    }
}

async fn listen(path: &str) {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind");
    loop {
        let (s, _) = listener.accept().await.expect("accept");
        tokio::spawn(ack(s));
    }
}

/// ack answers every whole frame read from s with a "not registered" ack carrying its id.
async fn ack(mut s: UnixStream) {
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Vec::with_capacity(4096);
    let mut have = 0;
    loop {
        match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(k) => have += k,
        }
        let mut p = 0;
        while have - p >= HEADER_LEN {
            let len = u32::from_le_bytes(buf[p + 5..p + 9].try_into().unwrap()) as usize;
            if HEADER_LEN + len > buf.len() {
                return; // not a frame of ours
            }
            if p + HEADER_LEN + len > have {
                break;
            }
            out.extend_from_slice(&[0xfe, buf[p], buf[p + 1], buf[p + 2], buf[p + 3], 0x71]);
            p += HEADER_LEN + len;
        }
        buf.copy_within(p..have, 0);
        have -= p;
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// dial makes n round trips over w connections, one frame in flight on each, and prints
/// their rate as bench/roundtrip does.
async fn dial(path: &str, w: usize, n: usize) {
    let mut body = b"nobody\0".to_vec();
    body.extend_from_slice(&[0x5a; 100]);
    let mut frame = vec![1, 0, 0, 0, 0x12 | 1 << 6];
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    let mut conns = Vec::new();
    for _ in 0..w {
        conns.push(UnixStream::connect(path).await.expect("connect"));
    }
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        let frame = frame.clone();
        let k = n / w + usize::from(i < n % w);
        tasks.push(tokio::spawn(async move {
            let mut got = [0u8; 6];
            for _ in 0..k {
                c.write_all(&frame).await.expect("write");
                c.read_exact(&mut got).await.expect("read");
                assert_eq!(got[0], 0xfe, "not an ack");
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("run 1: {rate:.0} round trips/s");
}
