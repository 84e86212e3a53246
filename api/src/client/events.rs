//! Newline-delimited JSON streams: one event per line, read as they arrive.

use super::ClientError;
use reqwest::Response;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A stream of `T`, one JSON document per line of a response body.
pub struct Events<T> {
    op: String,
    resp: Response,
    buf: Vec<u8>,
    done: bool,
    _t: PhantomData<T>,
}

impl<T: DeserializeOwned> Events<T> {
    /// Read events from `resp`; `op` names the call in errors.
    pub fn new(op: String, resp: Response) -> Events<T> {
        Events {
            op,
            resp,
            buf: Vec::new(),
            done: false,
            _t: PhantomData,
        }
    }

    /// The next event; `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Result<T, ClientError>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(self.decode(&line));
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                let rest = std::mem::take(&mut self.buf);
                return Some(self.decode(&rest));
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) => self.done = true,
                Err(source) => {
                    self.done = true;
                    self.buf.clear();
                    return Some(Err(ClientError::Http {
                        op: self.op.clone(),
                        source,
                    }));
                }
            }
        }
    }

    fn decode(&self, line: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(line).map_err(|e| ClientError::Decode {
            op: self.op.clone(),
            why: format!("{e} in {:?}", String::from_utf8_lossy(line)),
        })
    }
}
