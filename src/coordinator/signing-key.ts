// The coordinator's Ed25519 receipt-signing key: made on first start, kept owner-only in the data folder.
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportPublicKey, generateSigningKeys } from '../protocol/receipt.ts';

const KEY_FILE = 'coordinator-key.pkcs8';
const ED25519 = { name: 'Ed25519' } as const;

export interface SigningKey {
  privateKey: CryptoKey;
  publicKey: Uint8Array<ArrayBuffer>;
}

export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const path = join(dataDir, KEY_FILE);
  let pkcs8: Uint8Array<ArrayBuffer>;
  try {
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) throw new Error(`${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
    pkcs8 = new Uint8Array(await readFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const pair = await generateSigningKeys();
    pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
    await writeFile(path, pkcs8, { mode: 0o600, flag: 'wx' });
    await chmod(path, 0o600);
  }
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, ED25519, true, ['sign']);
  // The public half is derived from the private key through JWK (its "x" member).
  const jwk = await crypto.subtle.exportKey('jwk', privateKey);
  const publicCryptoKey = await crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, ED25519, true, ['verify']);
  return { privateKey, publicKey: await exportPublicKey(publicCryptoKey) };
}
