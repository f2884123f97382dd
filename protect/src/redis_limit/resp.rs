//! Just enough RESP2 to send commands and read their replies, with bounds:
//! a misbehaving server cannot make us allocate more than `MAX_BULK` for one
//! value or nest arrays deeper than `MAX_DEPTH`.

use std::io;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

const MAX_BULK: usize = 1 << 20;
const MAX_LINE: usize = 4096;
const MAX_DEPTH: usize = 4;
const MAX_ARRAY: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

/// Appends one command (array of bulk strings) to `out`.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad RESP: {what}"))
}

async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "redis closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(invalid("line too long or not CRLF-terminated"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| invalid("non-UTF-8 line"))
}

fn parse_len(s: &str) -> io::Result<i64> {
    s.parse().map_err(|_| invalid("bad length"))
}

/// Reads one reply.
pub async fn read_value<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Value> {
    read_nested(r, 0).await
}

async fn read_nested<R: AsyncBufRead + Unpin>(r: &mut R, depth: usize) -> io::Result<Value> {
    let line = read_line(r).await?;
    let (kind, rest) = line
        .split_at_checked(1)
        .ok_or_else(|| invalid("empty line"))?;
    match kind {
        "+" => Ok(Value::Simple(rest.to_string())),
        "-" => Ok(Value::Error(rest.to_string())),
        ":" => Ok(Value::Int(parse_len(rest)?)),
        "$" => {
            let len = parse_len(rest)?;
            if len < 0 {
                return Ok(Value::Bulk(None));
            }
            let len = usize::try_from(len).map_err(|_| invalid("bulk length"))?;
            if len > MAX_BULK {
                return Err(invalid("bulk string too large"));
            }
            let mut buf = vec![0u8; len + 2];
            r.read_exact(&mut buf).await?;
            if !buf.ends_with(b"\r\n") {
                return Err(invalid("bulk string not CRLF-terminated"));
            }
            buf.truncate(len);
            Ok(Value::Bulk(Some(buf)))
        }
        "*" => {
            let len = parse_len(rest)?;
            if len < 0 {
                return Ok(Value::Array(None));
            }
            let len = usize::try_from(len).map_err(|_| invalid("array length"))?;
            if len > MAX_ARRAY || depth >= MAX_DEPTH {
                return Err(invalid("array too large or too deep"));
            }
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(Box::pin(read_nested(r, depth + 1)).await?);
            }
            Ok(Value::Array(Some(items)))
        }
        _ => Err(invalid("unknown type byte")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> io::Result<Value> {
        let mut r = tokio::io::BufReader::new(bytes);
        read_value(&mut r).await
    }

    #[tokio::test]
    async fn parses_reply_types() {
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Value::Simple("OK".into()));
        assert_eq!(
            parse(b"-NOSCRIPT x\r\n").await.unwrap(),
            Value::Error("NOSCRIPT x".into())
        );
        assert_eq!(parse(b":-3\r\n").await.unwrap(), Value::Int(-3));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Value::Bulk(None));
        assert_eq!(
            parse(b"*2\r\n:1\r\n$2\r\nab\r\n").await.unwrap(),
            Value::Array(Some(vec![Value::Int(1), Value::Bulk(Some(b"ab".to_vec()))]))
        );
    }

    #[tokio::test]
    async fn rejects_bad_input() {
        for bad in [
            &b"?x\r\n"[..],
            b"$5\r\nab\r\n",
            b"$99999999999\r\n",
            b":12\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"",
        ] {
            assert!(
                parse(bad).await.is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode(&[b"GET", b"k"], &mut out);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
