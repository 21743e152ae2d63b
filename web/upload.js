// upload.js — how the web page sends a file: one POST /v1/assets for a small
// file, resumable tus uploads (/v1/tus/) for a large one.  app.js owns the
// page (rows, progress bars, the gallery); this module only moves bytes and
// answers with the asset's JSON or an UploadError.
//
// Large files go through tus-js-client's browser bundle (npm tus-js-client,
// pinned in web/vendor/package.json, served as /tus.min.js and loaded by
// index.html before the modules; it sets window.tus).  It sends the file in
// PATCHes of TUS_CHUNK bytes, each acknowledged only once the server has
// stored it durably, so a broken upload loses at most the chunk in flight:
//
//   - a network cut or a restarting server: the same Upload retries after
//     RETRY_DELAYS (a HEAD asks where to go on, then PATCHes from there).
//     After kill -9 the dead request's lease blocks the upload (423) for up
//     to --tus-lease (30 s by default), which the delays outlast;
//   - a reloaded tab, or the same file chosen again later: tus-js-client
//     keeps each upload's URL in localStorage under a fingerprint of the
//     file (name, type, size, last modified, endpoint), and uploadTus()
//     resumes the newest one it finds instead of starting over.  The entry
//     goes when the upload succeeds, so choosing the file again after that
//     makes a new asset, as POST would.  An entry the server no longer
//     knows (404, 410: expired and collected, another owner's) is dropped by
//     tus-js-client, which then starts a new upload.
//
// The finished upload is an asset with the upload's id: the last reply (the
// PATCH that completed it, or the HEAD of an upload already complete) names
// it in Asset-Id, and its JSON is read from /v1/assets/{id}.

/** Files larger than this go through tus; smaller ones are one POST. */
const TUS_THRESHOLD = 16 * 1024 * 1024;
/** Bytes per PATCH: what an interruption can cost, and one fsync each. */
const TUS_CHUNK = 16 * 1024 * 1024;
/** Milliseconds between tries after a failure; progress starts them over. */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000];

export class UploadError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** An UploadError from a reply: its JSON error if it has one, else the status. */
function errorOf(status, body, fallback) {
  try {
    const j = JSON.parse(body);
    if (j && j.error && j.error.code) return new UploadError(status, j.error.code, j.error.message);
  } catch { /* not JSON */ }
  return status ? new UploadError(status, `http_${status}`, fallback) : new UploadError(0, 'network_error', fallback);
}

/**
 * Uploads one file with the key; resolves with the asset's JSON.
 *   onProgress(loaded, total): bytes sent so far (a resumed upload starts at
 *     what the server already has);
 *   onStatus(text): what is happening, for the row ("resuming…");
 *   signal: an AbortSignal that stops the upload (a tus upload stays
 *     resumable: nothing is deleted on the server).
 */
export async function uploadFile(file, key, { onProgress, onStatus, signal } = {}) {
  if (file.size > TUS_THRESHOLD) return uploadTus(file, key, { onProgress, onStatus, signal });
  return uploadPost(file, key, { onProgress, signal });
}

/** One multipart POST /v1/assets, through XMLHttpRequest for its upload progress. */
function uploadPost(file, key, { onProgress, signal }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/assets');
    xhr.setRequestHeader('Authorization', `Bearer ${key}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress?.(e.loaded, e.total); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201 && body && body.id) resolve(body);
      else reject(errorOf(xhr.status, xhr.responseText, xhr.statusText || 'the upload failed'));
    };
    xhr.onerror = () => reject(new UploadError(0, 'network_error', 'the upload did not complete'));
    xhr.onabort = () => reject(new UploadError(0, 'cancelled', 'cancelled'));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

/** A resumable upload (see the top of this file). */
async function uploadTus(file, key, { onProgress, onStatus, signal }) {
  const tus = window.tus;
  if (!tus || !tus.isSupported) throw new UploadError(0, 'unsupported', 'this browser cannot upload resumably');
  const metadata = { filename: file.name };
  if (file.type) metadata.filetype = file.type;
  let upload;
  const done = new Promise((resolve, reject) => {
    upload = new tus.Upload(file, {
      endpoint: new URL('/v1/tus/', window.location.href).href,
      headers: { Authorization: `Bearer ${key}` },
      metadata,
      chunkSize: TUS_CHUNK,
      retryDelays: RETRY_DELAYS,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => onProgress?.(sent, total),
      onShouldRetry: (err, attempt) => {
        const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
        // tus-js-client's own rule: not a client error, except 409 (offset
        // mismatch) and 423 (locked); and only while online.
        const retry = (status < 400 || status >= 500 || status === 409 || status === 423)
          && navigator.onLine !== false;
        if (retry) onStatus?.(`interrupted, trying again (${attempt + 1} of ${RETRY_DELAYS.length})…`);
        return retry;
      },
      onChunkComplete: () => onStatus?.('uploading…'),
      onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader('Asset-Id') || upload.url.split('/').pop()),
      onError: (err) => {
        const res = err.originalResponse;
        reject(res ? errorOf(res.getStatus(), res.getBody(), err.message)
          : new UploadError(0, 'network_error', 'the server cannot be reached; choose the file again to resume'));
      },
    });
    // An aborted Upload calls neither onSuccess nor onError: settle here.
    signal?.addEventListener('abort', () => {
      upload.abort(false);
      reject(new UploadError(0, 'cancelled', 'cancelled'));
    }, { once: true });
  });
  done.catch(() => {});   // awaited below; never an unhandled rejection if we throw first
  const previous = await upload.findPreviousUploads();
  if (signal?.aborted) return done;   // rejected: cancelled
  if (previous.length) {
    // creationTime is a Date's toString(): compare it as a date.
    previous.sort((a, b) => (Date.parse(b.creationTime) || 0) - (Date.parse(a.creationTime) || 0));
    upload.resumeFromPreviousUpload(previous[0]);
    onStatus?.('resuming…');
  }
  upload.start();
  const id = await done;
  const res = await fetch(`/v1/assets/${encodeURIComponent(id)}`, {
    cache: 'no-store', headers: { Authorization: `Bearer ${key}` },
  });
  const body = await res.text();
  if (!res.ok) throw errorOf(res.status, body, res.statusText);
  return JSON.parse(body);
}
