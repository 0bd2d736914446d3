// What a coordinator signs its challenge over on a WebSocket, where no DTLS certificate names the far end.
//
// A page cannot read its TLS connection's certificate, so the WebSocket challenge is bound to the host the miner
// dialled instead: a signature made for a data channel (over a certificate fingerprint) or for another host never
// verifies here. Whoever answers on that host is the origin the miner trusts already: it served the config that pins
// the coordinator's key.

const DOMAIN = 'ergon-miner-socket-v1\n';

/** sha-256 of the domain and the host (with its port, as a URL's `host` and an HTTP Host header write it). */
export async function socketBinding(host: string): Promise<Uint8Array<ArrayBuffer>> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(DOMAIN + host.toLowerCase()));
  return new Uint8Array(digest);
}
