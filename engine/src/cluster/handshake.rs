//! The handshake two cluster processes exchange before timely takes their socket: `MAGIC`, the
//! process index (u64), then the settings as length-prefixed key and value pairs. Each side
//! sends its own before it checks the other's, so both ends of a mismatch can say what differs.

use std::collections::BTreeMap;
use std::io::{self, Read};

/// The first bytes of a handshake: tells an lpm peer from anything else on the port.
pub(super) const MAGIC: &[u8; 8] = b"LPMCLU01";
/// The largest handshake accepted (settings are a few hundred bytes; garbage is refused early).
const MAX_HELLO_BYTES: u32 = 64 * 1024;

/// What one side tells the other before timely starts.
pub(super) struct Hello {
    pub(super) process: usize,
    pub(super) settings: BTreeMap<String, String>,
}

impl Hello {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.process as u64).to_be_bytes());
        for (k, v) in &self.settings {
            for s in [k, v] {
                body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                body.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    pub(super) fn read(r: &mut impl Read) -> Result<Hello, String> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(closed)?;
        if &magic != MAGIC {
            return Err("the peer is not an lpm cluster process of this version".into());
        }
        let len = read_u32(r)?;
        if len > MAX_HELLO_BYTES {
            return Err(format!("handshake of {len} bytes is too large"));
        }
        let mut body = vec![0u8; len as usize];
        r.read_exact(&mut body).map_err(closed)?;
        let mut cur = io::Cursor::new(body);
        let mut idx = [0u8; 8];
        cur.read_exact(&mut idx).map_err(closed)?;
        let process = usize::try_from(u64::from_be_bytes(idx)).map_err(|e| e.to_string())?;
        let mut settings = BTreeMap::new();
        while (cur.position() as usize) < cur.get_ref().len() {
            let k = read_string(&mut cur)?;
            let v = read_string(&mut cur)?;
            settings.insert(k, v);
        }
        Ok(Hello { process, settings })
    }
}

fn closed(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the peer closed the connection (it may have refused the cluster: see its log)".into()
        }
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            "the peer did not finish the handshake in time".into()
        }
        _ => e.to_string(),
    }
}

fn read_u32(r: &mut impl Read) -> Result<u32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(closed)?;
    Ok(u32::from_be_bytes(b))
}

fn read_string(r: &mut impl Read) -> Result<String, String> {
    let len = read_u32(r)?;
    let mut b = vec![0u8; len as usize];
    r.read_exact(&mut b).map_err(closed)?;
    String::from_utf8(b).map_err(|e| e.to_string())
}

/// `key: here X, there Y` for each setting the two sides do not share.
pub(super) fn differences(
    mine: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> String {
    let keys: std::collections::BTreeSet<&String> = mine.keys().chain(theirs.keys()).collect();
    let none = "(not set)".to_string();
    keys.into_iter()
        .filter(|k| mine.get(*k) != theirs.get(*k))
        .map(|k| {
            format!(
                "{k}: here {}, there {}",
                mine.get(k).unwrap_or(&none),
                theirs.get(k).unwrap_or(&none)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_round_trips_and_differences_name_the_keys() {
        let mut settings = BTreeMap::new();
        settings.insert("tz".to_string(), "UTC".to_string());
        settings.insert("hotspots".to_string(), "off".to_string());
        let bytes = Hello {
            process: 3,
            settings: settings.clone(),
        }
        .encode();
        let back = Hello::read(&mut io::Cursor::new(bytes)).expect("decodes");
        assert_eq!(back.process, 3);
        assert_eq!(back.settings, settings);
        let mut other = settings.clone();
        other.insert("tz".into(), "Europe/Madrid".into());
        other.remove("hotspots");
        assert_eq!(
            differences(&settings, &other),
            "hotspots: here off, there (not set); tz: here UTC, there Europe/Madrid"
        );
        let garbage = Hello::read(&mut io::Cursor::new(b"GET / HTTP/1.1\r\n\r\n".to_vec()));
        assert!(garbage.is_err());
    }
}
