//! Response bodies: whole JSON documents, text, and chunked JSON-lines
//! streams fed from a channel and flushed one message at a time.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Frame;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::log;

/// The body type of every response.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

pub(crate) fn empty_body() -> Body {
    Empty::new().boxed_unsync()
}

pub(crate) fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A JSON document with `Content-Type: application/json` exactly (the docker
/// CLI compares the header as a string).
pub(crate) fn json_with_status<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> http::Response<Body> {
    let (status, bytes) = match serde_json::to_vec(value) {
        Ok(bytes) => (status, bytes),
        Err(err) => {
            log::error!("serializing a response body: {err}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"message":"internal error: could not serialize the response"}"#.to_vec(),
            )
        }
    };
    let mut response = http::Response::new(full_body(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> http::Response<Body> {
    json_with_status(StatusCode::OK, value)
}

/// A streamed body of newline-terminated JSON messages, one per item received
/// from the channel, each sent as its own chunk as soon as it arrives. The body
/// ends when every sender is dropped; dropping the body (client gone) makes
/// the senders' `send` fail and `closed()` resolve, so producers stop.
#[derive(Debug)]
pub(crate) struct JsonLinesBody<T> {
    items: mpsc::Receiver<T>,
}

impl<T: Serialize + Send + 'static> hyper::body::Body for JsonLinesBody<T> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            return match this.items.poll_recv(cx) {
                Poll::Ready(Some(item)) => match serde_json::to_vec(&item) {
                    Ok(mut line) => {
                        line.push(b'\n');
                        Poll::Ready(Some(Ok(Frame::data(Bytes::from(line)))))
                    }
                    Err(err) => {
                        log::error!("serializing a streamed message, skipped: {err}");
                        continue;
                    }
                },
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

/// A 200 `application/json` response streaming the messages sent on the
/// returned sender (Transfer-Encoding: chunked, as docker-py requires).
pub(crate) fn json_lines<T: Serialize + Send + 'static>(
    capacity: usize,
) -> (mpsc::Sender<T>, http::Response<Body>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let mut response = http::Response::new(JsonLinesBody { items: rx }.boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (tx, response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body as _;

    #[tokio::test]
    async fn json_lines_sends_one_frame_per_message_and_ends_with_the_senders() {
        let (tx, response) = json_lines::<serde_json::Value>(4);
        let mut body = response.into_body();
        assert!(!body.is_end_stream());
        tx.send(serde_json::json!({"status": "a"})).await.unwrap();
        tx.send(serde_json::json!({"status": "b"})).await.unwrap();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"{\"status\":\"a\"}\n");
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&second[..], b"{\"status\":\"b\"}\n");
        drop(tx);
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn dropping_the_body_closes_the_sender() {
        let (tx, response) = json_lines::<u32>(1);
        drop(response);
        tx.closed().await;
        assert!(tx.send(1).await.is_err());
    }
}
