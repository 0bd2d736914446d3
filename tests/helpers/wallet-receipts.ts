// The receipts a page's wallet stored in IndexedDB, read from inside the page, as an e2e test checks them.
import type { Page } from '@playwright/test';

export interface StoredReceipt {
  unitId: string;
  jobId: string;
  microCredits: bigint;
  joules: number;
  joulesSource: string;
  /** hex of the key that signed it */
  coordinatorKey: string;
}

export function storedReceipts(page: Page): Promise<StoredReceipt[]> {
  return page.evaluate(
    () =>
      new Promise<StoredReceipt[]>((resolve, reject) => {
        const open = indexedDB.open('ergon-wallet');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const all = open.result.transaction('receipts').objectStore('receipts').getAll();
          all.onsuccess = () =>
            resolve(
              all.result.map((r: Omit<StoredReceipt, 'coordinatorKey'> & { coordinatorKey: Uint8Array }) => ({
                unitId: r.unitId, jobId: r.jobId, microCredits: r.microCredits, joules: r.joules, joulesSource: r.joulesSource,
                coordinatorKey: [...r.coordinatorKey].map((b) => b.toString(16).padStart(2, '0')).join(''),
              })),
            );
          all.onerror = () => reject(all.error);
        };
      }),
  );
}
