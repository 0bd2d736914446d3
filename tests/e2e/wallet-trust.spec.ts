// Forged earnings in a wallet file: the balance counts only receipts from coordinators this browser trusts (keys
// pinned from the coordinators the person added); receipts under any other key are kept apart, and refused when no
// one could have signed them.
import { expect, test } from '@playwright/test';
import { loadOrCreateSigningKey } from '../../src/coordinator/signing-key.ts';
import type { Receipt, ReceiptBody } from '../../src/protocol/messages.ts';
import { exportPublicKey, generateSigningKeys, signReceipt, toHex } from '../../src/protocol/receipt.ts';
import { formatCredits } from '../../src/wallet/wallet.ts';
import { receiptToJson, toBase64, WALLET_FILE_FORMAT, WALLET_FILE_VERSION } from '../../src/wallet/wallet-file.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

process.env.ERGON_LOG ??= 'silent';

let stack: TestStack;
/** A second coordinator, not in the person's list until the test adds it. */
let other: TestStack;
test.beforeAll(async () => {
  stack = await startStack({ serveApp: true });
  other = await startStack({ allowedOrigins: [new URL(stack.url).origin] });
});
test.afterAll(async () => {
  await other?.stop();
  await stack?.stop();
});

const FORGED_MICRO_CREDITS = 2_000_000n * 1_000_000n;

test('a wallet file of forged receipts adds no credit, and the genuine receipts in it still count', async ({ page }) => {
  page.on('pageerror', (err) => console.error('page error:', err.message));
  const wallet = await generateSigningKeys();
  const minerKey = await exportPublicKey(wallet.publicKey);
  let unit = 0;
  const body = (coordinatorKey: Uint8Array, microCredits: bigint): ReceiptBody => ({
    unitId: `job-1.${unit++}`, jobId: 'job-1', kind: 'gemm', minerKey, coordinatorKey, ops: microCredits * 1000n, microCredits,
    gpuSeconds: 0.5, joules: 0, joulesSource: 'none', issuedAtMs: BigInt(Date.UTC(2025, 5, 1, 12)),
  });

  // Genuine: signed by this page's coordinator, and by another coordinator the person has not added yet.
  const coordinator = await loadOrCreateSigningKey(stack.dataDir);
  const otherCoordinator = await loadOrCreateSigningKey(other.dataDir);
  const genuine = [
    await signReceipt(coordinator.privateKey, body(coordinator.publicKey, 1_250_000n)),
    await signReceipt(coordinator.privateKey, body(coordinator.publicKey, 750_001n)),
  ];
  const fromOther = await signReceipt(otherCoordinator.privateKey, body(otherCoordinator.publicKey, 500_000n));
  // Forged: 2,000,000 credits under a key the forger made, naming it as the coordinator's.
  const forger = await generateSigningKeys();
  const forged = await signReceipt(forger.privateKey, body(await exportPublicKey(forger.publicKey), FORGED_MICRO_CREDITS));
  // "Signed" by the small-order identity key: R the identity and S = 0 verify for any message under it.
  const identity = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));
  const trivial: Receipt = { ...body(identity, FORGED_MICRO_CREDITS), signature: Uint8Array.from({ length: 64 }, (_, i) => (i === 0 ? 1 : 0)) };

  const file = {
    format: WALLET_FILE_FORMAT,
    version: WALLET_FILE_VERSION,
    exportedAtMs: Date.now(),
    publicKey: toHex(minerKey),
    privateKeyPkcs8: toBase64(new Uint8Array(await crypto.subtle.exportKey('pkcs8', wallet.privateKey))),
    receipts: [...genuine, fromOther, forged, trivial].map(receiptToJson),
  };

  await page.goto(stack.url);
  await expect(page.getByTestId('wallet-key')).not.toHaveText('…');
  await page.getByLabel('Import a wallet file').setInputFiles({ name: 'wallet.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(file)) });

  const genuineCredits = formatCredits(genuine.reduce((s, r) => s + r.microCredits, 0n));
  expect(genuineCredits).toBe('2.000001');
  await expect(page.getByTestId('credits')).toHaveText(genuineCredits);
  await expect(page.getByTestId('receipts')).toHaveText('2');
  const message = page.getByTestId('wallet-file-message');
  await expect(message).toContainText('Imported 4 receipts');
  await expect(message).toContainText('2 are signed by coordinators you have not added');
  await expect(message).toContainText('refused 1 (receipt refused: its coordinator key is refused: it is a point of small order');
  await expect(page.getByTestId('unverified')).toHaveText('Not counted: 2 receipts (2000000.500000 credits) signed by coordinators you have not added.');

  // Each receipt's verdict, on request: which coordinator vouches for it, or why it does not count.
  await page.getByRole('button', { name: 'Verify all receipts' }).click();
  await expect(page.getByTestId('verify-summary')).toHaveText('2 of 4 receipts verified and counted; 2 not counted: signed by coordinators you have not added.');

  // Adding the other coordinator pins its key from its own /api/config: its receipt counts, the forged one never.
  await page.getByLabel('Coordinator address').fill(other.url);
  await page.getByRole('button', { name: 'Add coordinator' }).click();
  const withOther = formatCredits(genuine.reduce((s, r) => s + r.microCredits, fromOther.microCredits));
  await expect(page.getByTestId('credits')).toHaveText(withOther);
  await expect(page.getByTestId('receipts')).toHaveText('3');
  await expect(page.getByTestId('unverified')).toHaveText('Not counted: 1 receipt (2000000.000000 credits) signed by coordinators you have not added.');
  await expect(page.getByTestId('coordinators')).toContainText(toHex(otherCoordinator.publicKey).slice(0, 16));
  await page.getByText('Show each receipt').click();
  await page.screenshot({ path: 'tests/screenshots/wallet-trust.png', fullPage: true });

  await page.reload();
  await expect(page.getByTestId('credits')).toHaveText(withOther);
  await expect(page.getByTestId('receipts')).toHaveText('3');
});
