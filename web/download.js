// "Download": the same music as a file, rendered by the server faster than
// real time. fetch + ReadableStream rather than a plain link, so the page
// can show progress (the WAV's length is known in advance) and the reason
// of a refusal (400 for a bad length, 503 when the server is busy).

/** Fetches `url`, calling `onProgress(received, total|null)` as bytes
 * arrive; resolves to { blob, name }, or throws an Error with the server's
 * reason. */
export async function fetchWithProgress(url, onProgress) {
  const res = await fetch(url);
  if (!res.ok) {
    const reason = (await res.text()).trim();
    throw new Error(reason || `HTTP ${res.status}`);
  }
  const total = Number(res.headers.get('content-length')) || null;
  const reader = res.body.getReader();
  const parts = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    received += value.length;
    onProgress(received, total);
  }
  const blob = new Blob(parts, { type: res.headers.get('content-type') ?? 'application/octet-stream' });
  return { blob, name: dispositionName(res.headers.get('content-disposition'), 'auralis') };
}

/** The file name of a Content-Disposition header, or `fallback`. */
export function dispositionName(header, fallback) {
  const m = /filename="([^"]+)"/.exec(header ?? '');
  return m ? m[1] : fallback;
}

/** Hands a Blob to the browser as a download. */
export function saveBlob(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}
