// The wallet file's own key: one that no one holds, or that is encoded in more than one way, is refused on reading.
import { describe, expect, it } from 'vitest';
import { exportPublicKey, generateSigningKeys, toHex } from '../../../src/protocol/receipt.ts';
import { parseWalletFile, toBase64, WALLET_FILE_FORMAT, WALLET_FILE_VERSION } from '../../../src/wallet/wallet-file.ts';

async function fileWithKey(publicKey: string): Promise<string> {
  const keys = await generateSigningKeys();
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  return JSON.stringify({
    format: WALLET_FILE_FORMAT, version: WALLET_FILE_VERSION, exportedAtMs: 0, publicKey, privateKeyPkcs8: toBase64(pkcs8), receipts: [],
  });
}

describe('wallet file key', () => {
  it('reads a file whose key WebCrypto made', async () => {
    const key = toHex(await exportPublicKey((await generateSigningKeys()).publicKey));
    expect(parseWalletFile(await fileWithKey(key))).toMatchObject({ ok: true });
  });

  it('refuses a file whose key is the small-order identity point, saying so', async () => {
    const parsed = parseWalletFile(await fileWithKey(`01${'00'.repeat(31)}`));
    expect(parsed).toEqual({ ok: false, error: 'not an Ergon wallet file: publicKey: the key is refused: it is a point of small order, whose secret anyone knows' });
  });

  it('refuses a file whose key is not canonically encoded', async () => {
    const parsed = parseWalletFile(await fileWithKey(`ee${'ff'.repeat(30)}7f`));
    expect(parsed.ok === false && parsed.error).toMatch(/^not an Ergon wallet file: publicKey: .*not canonical/);
  });
});
