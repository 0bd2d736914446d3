// The results a page keeps in IndexedDB until their verdicts (src/miner/unsettled-store.ts), read and tampered with
// from inside the page, as an e2e test checks them and as a cheater would copy and put them back.
import type { Page } from '@playwright/test';

const CHEAT_DB = 'cheat-copy';

/** The unit ids of the results the page keeps. */
export function keptUnitIds(page: Page): Promise<string[]> {
  return page.evaluate(
    () =>
      new Promise<string[]>((resolve, reject) => {
        const open = indexedDB.open('ergon-unsettled');
        // Not made yet: nothing was ever kept. Made here with no stores, the app would then find it unusable.
        open.onupgradeneeded = () => open.transaction?.abort();
        open.onerror = () => resolve([]);
        open.onsuccess = () => {
          const keys = open.result.transaction('results').objectStore('results').getAllKeys();
          keys.onsuccess = () => {
            open.result.close();
            resolve(keys.result.map(String));
          };
          keys.onerror = () => reject(keys.error);
        };
      }),
  );
}

/** Copies every kept record (results and their sizes) into a database of the cheater's own, which survives reloads. */
export function copyKept(page: Page): Promise<number> {
  return page.evaluate(async (cheatDb) => {
    const opened = (name: string, upgrade?: (db: IDBDatabase) => void) =>
      new Promise<IDBDatabase>((resolve, reject) => {
        const open = upgrade ? indexedDB.open(name, 1) : indexedDB.open(name);
        if (upgrade) open.onupgradeneeded = () => upgrade(open.result);
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
    const done = <T>(request: IDBRequest<T>) =>
      new Promise<T>((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    const source = await opened('ergon-unsettled');
    const copy = await opened(cheatDb, (db) => {
      db.createObjectStore('results');
      db.createObjectStore('sizes');
    });
    let copied = 0;
    for (const store of ['results', 'sizes']) {
      const from = source.transaction(store).objectStore(store);
      const [keys, values] = await Promise.all([done(from.getAllKeys()), done(from.getAll())]);
      const to = copy.transaction(store, 'readwrite').objectStore(store);
      for (const [i, key] of keys.entries()) await done(to.put(values[i], key));
      if (store === 'results') copied = keys.length;
    }
    source.close();
    copy.close();
    return copied;
  }, CHEAT_DB);
}

/** Puts the copied records back as kept results, their lease deadlines moved to `deadlineAtMs`, as a cheater edits them. */
export function restoreCopy(page: Page, deadlineAtMs: number): Promise<number> {
  return page.evaluate(
    async ({ cheatDb, deadlineAtMs }) => {
      const opened = (name: string) =>
        new Promise<IDBDatabase>((resolve, reject) => {
          const open = indexedDB.open(name);
          open.onsuccess = () => resolve(open.result);
          open.onerror = () => reject(open.error);
        });
      const done = <T>(request: IDBRequest<T>) =>
        new Promise<T>((resolve, reject) => {
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        });
      const copy = await opened(cheatDb);
      const target = await opened('ergon-unsettled');
      let restored = 0;
      for (const store of ['results', 'sizes']) {
        const from = copy.transaction(store).objectStore(store);
        const [keys, values] = await Promise.all([done(from.getAllKeys()), done(from.getAll())]);
        const to = target.transaction(store, 'readwrite').objectStore(store);
        for (const [i, key] of keys.entries()) await done(to.put({ ...(values[i] as object), deadlineAtMs }, key));
        if (store === 'results') restored = keys.length;
      }
      copy.close();
      target.close();
      return restored;
    },
    { cheatDb: CHEAT_DB, deadlineAtMs },
  );
}
