//! What an API request carries, read within bounds: the JSON body (at most `limit` bytes, whether
//! announced by `Content-Length` or streamed chunked, and complete within `deadline`) and the
//! query string.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use serde::de::DeserializeOwned;

use super::ApiError;

/// Reads the whole body, refusing it as soon as it is known to be over `limit` bytes, or when it
/// has not all come within `deadline`: a client holding a request open by never finishing its
/// body is cut off as one that never finishes its header is (`handshake_timeout`), whatever its key.
pub async fn body<S, B>(
    headers: &HeaderMap,
    stream: S,
    limit: usize,
    deadline: Duration,
) -> Result<BytesMut, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    tokio::time::timeout(deadline, read(headers, stream, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout { after: deadline })?
}

async fn read<S, B>(headers: &HeaderMap, stream: S, limit: usize) -> Result<BytesMut, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let too_large = ApiError::TooLarge {
        what: "the request body",
        limit,
    };
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large);
    }
    let mut body = BytesMut::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk =
            chunk.map_err(|e| ApiError::BadJson(format!("could not read the body: {e}")))?;
        if body.len() + chunk.remaining() > limit {
            return Err(too_large);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body)
}

/// The body as `T` (whose fields are `deny_unknown_fields`): every shape problem is `bad_json`.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadJson(
            "the body is empty: send a JSON object".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadJson(format!("bad JSON body: {e}")))
}

/// The query string as `T` (`deny_unknown_fields`): every problem is `bad_query`.
pub fn query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query).map_err(|e| ApiError::BadQuery(format!("bad query: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static str]) -> impl Stream<Item = Result<bytes::Bytes, warp::Error>> {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(bytes::Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        )
    }

    const SOON: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_announced_or_streamed() {
        let ok = body(&HeaderMap::new(), chunks(&["{\"a\":", "1}"]), 7, SOON).await;
        assert_eq!(ok.expect("fits").as_ref(), b"{\"a\":1}");
        let streamed = body(&HeaderMap::new(), chunks(&["{\"a\":", "12}"]), 7, SOON).await;
        assert_eq!(streamed.unwrap_err().code(), "too_large");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, "8".parse().expect("header"));
        let announced = body(&headers, chunks(&[]), 7, SOON).await;
        assert_eq!(announced.unwrap_err().code(), "too_large");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_is_cut_off_at_the_deadline() {
        // A first chunk, then nothing, ever: what a client holding the request open sends.
        let stalled = chunks(&["{\"a\":"]).chain(futures_util::stream::pending());
        let started = tokio::time::Instant::now();
        let err = body(&HeaderMap::new(), stalled, 1024, SOON)
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.status().as_u16()),
            ("request_timeout", 408)
        );
        assert_eq!(started.elapsed(), SOON);
    }

    #[test]
    fn json_and_query_problems_have_their_codes() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct T {
            a: u32,
        }
        assert_eq!(json::<T>(b"{\"a\":1}").map(|t| t.a), Ok(1));
        for bad in [
            &b""[..],
            b" ",
            b"{",
            b"[]",
            b"{\"a\":1,\"b\":2}",
            b"{\"a\":\"x\"}",
        ] {
            assert_eq!(json::<T>(bad).unwrap_err().code(), "bad_json", "{bad:?}");
        }
        assert_eq!(query::<T>("a=1").map(|t| t.a), Ok(1));
        assert_eq!(query::<T>("a=x").unwrap_err().code(), "bad_query");
        assert_eq!(query::<T>("a=1&b=2").unwrap_err().code(), "bad_query");
    }
}
