//! An S3-compatible bucket as an OME-Zarr output (`s3://bucket/path.ome.zarr`), through
//! `object_store`. Credentials, region and endpoint come from the usual environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint such as a local test server).
//!
//! Objects are written whole: small ones with one PUT, shards (streamed to a local temporary
//! file first) with a multipart upload that becomes visible only when completed — S3's
//! equivalent of the file system's rename. The calls block on a small runtime of their own.

use crate::error::{Error, Result};
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::path::Path;

/// Parts of a multipart upload (S3 takes 5 MiB and more, except the last).
const PART: usize = 8 << 20;

/// A bucket and the prefix of one output in it.
pub(crate) struct Bucket {
    store: AmazonS3,
    prefix: String,
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    /// Opens `s3://bucket/prefix` with the environment's configuration.
    pub(crate) fn open(url: &str) -> Result<Bucket> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| Error::usage(format!("{url}: not an s3:// address")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/').to_string();
        if bucket.is_empty() || prefix.is_empty() {
            return Err(Error::usage(format!("{url}: give a bucket and a path, s3://bucket/path.ome.zarr")));
        }
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| Error::usage(format!("{url}: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("runtime for {url}: {e}")))?;
        Ok(Bucket { store, prefix, url: url.to_string(), rt })
    }

    fn key(&self, key: &str) -> Key {
        Key::from(format!("{}/{key}", self.prefix))
    }

    fn err(&self, key: &str, e: object_store::Error) -> Error {
        let kind = match e {
            object_store::Error::NotFound { .. } => std::io::ErrorKind::NotFound,
            _ => std::io::ErrorKind::Other,
        };
        Error::io(format!("{}/{key}", self.url), std::io::Error::new(kind, e.to_string()))
    }

    /// Writes object `key` in one PUT.
    pub(crate) fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let r = self.rt.block_on(self.store.put(&self.key(key), PutPayload::from(bytes.to_vec())));
        r.map(|_| ()).map_err(|e| self.err(key, e))
    }

    /// Object `key`, or `None` if there is none.
    pub(crate) fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let r = self.rt.block_on(async {
            let got = self.store.get(&self.key(key)).await?;
            got.bytes().await
        });
        match r {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// The sizes of the objects under `dir` (a key prefix), by key relative to the output.
    pub(crate) fn list(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let base = format!("{}/", self.prefix);
        let r: Vec<object_store::Result<object_store::ObjectMeta>> =
            self.rt.block_on(self.store.list(Some(&self.key(dir))).collect());
        r.into_iter()
            .map(|m| {
                let m = m.map_err(|e| self.err(dir, e))?;
                let k = m.location.as_ref().strip_prefix(&base).unwrap_or(m.location.as_ref()).to_string();
                Ok((k, m.size))
            })
            .collect()
    }

    /// Uploads the local file `path` as object `key`, in parts; the object appears whole when
    /// the upload completes, or not at all.
    pub(crate) fn upload(&self, key: &str, path: &Path) -> Result<()> {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let r = self.rt.block_on(async {
            let upload = self.store.put_multipart(&self.key(key)).await?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buf = vec![0u8; PART];
            loop {
                let n = match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = w.abort().await;
                        return Ok(Err(Error::io(path, e)));
                    }
                };
                w.wait_for_capacity(2).await?;
                w.write(&buf[..n]);
            }
            w.finish().await.map(|_| Ok(()))
        });
        r.map_err(|e| self.err(key, e))?
    }

    /// Deletes every object of the output.
    pub(crate) fn remove_all(&self) -> Result<()> {
        for (k, _) in self.list("")? {
            let r = self.rt.block_on(self.store.delete(&self.key(&k)));
            r.map_err(|e| self.err(&k, e))?;
        }
        Ok(())
    }

    /// The output's address.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}
