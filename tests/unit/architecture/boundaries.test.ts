// The house rules of the layout, checked on the source itself: shared code imports neither end, the browser never
// imports the coordinator, and nothing outside a kind's own folders and the registry names a kind.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_KINDS } from '../../../src/work/registry.ts';

const SRC = resolve('src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|svelte)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;(])import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

/** What a file imports: src-relative folders for its own modules ('coordinator/...'), package names for the rest. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => {
    const specifier = m[1] ?? m[2] ?? m[3];
    return specifier.startsWith('.') ? relative(SRC, resolve(dirname(file), specifier)) : `package:${specifier}`;
  });
}

const filesUnder = (...folders: string[]) => folders.flatMap((f) => sourceFiles(join(SRC, f)));
const where = (file: string) => relative(SRC, file);

/** Imports of these files that match `forbidden`, as "file -> import" lines (empty when the rule holds). */
function violations(files: string[], forbidden: (target: string) => boolean): string[] {
  return files.flatMap((file) => importsOf(file).filter(forbidden).map((target) => `${where(file)} -> ${target}`));
}

const BROWSER_FOLDERS = ['miner', 'wallet', 'app', 'operator'];
const NODE_FOLDERS = ['coordinator', 'client'];
/** Packages that need a browser (peerjs runs in both: the coordinator is a PeerJS peer in Node). */
const BROWSER_PACKAGES = /^package:(idb|svelte|onnxruntime-web|virtual:|workbox)/;
const inFolder = (target: string, folders: string[]) => folders.some((f) => target === f || target.startsWith(`${f}/`));

describe('architecture', () => {
  it('finds the imports it checks (the scanner itself works)', () => {
    expect(importsOf(join(SRC, 'coordinator/server.ts'))).toContain('coordinator/jobs.ts');
    expect(importsOf(join(SRC, 'coordinator/server.ts'))).toContain('package:express');
    expect(importsOf(join(SRC, 'coordinator/ledger/ledger.ts'))).toContain('coordinator/ledger/sqlite.ts');
  });

  it('protocol/ and work/ import nothing from the browser or from Node', () => {
    const shared = filesUnder('protocol', 'work');
    expect(shared.length).toBeGreaterThan(5);
    expect(violations(shared, (t) => t.startsWith('package:node:') || inFolder(t, [...BROWSER_FOLDERS, ...NODE_FOLDERS]) || BROWSER_PACKAGES.test(t)
      || /^package:(express|better-sqlite3|ws|peer|peerjs|node-datachannel)$/.test(t))).toEqual([]);
  });

  it('browser code never imports the coordinator or the requester\'s client, and Node code never the browser\'s', () => {
    expect(violations(filesUnder(...BROWSER_FOLDERS), (t) => inFolder(t, NODE_FOLDERS) || t.startsWith('package:node:'))).toEqual([]);
    expect(violations(filesUnder(...NODE_FOLDERS), (t) => inFolder(t, BROWSER_FOLDERS) || BROWSER_PACKAGES.test(t))).toEqual([]);
  });

  it('names no kind of work in coordinator/, protocol/ or the miner\'s kind-agnostic loop outside the registries', () => {
    const kindNames = BUILT_IN_KINDS.map((kind) => kind.name);
    expect(kindNames).toContain('gemm');
    const agnostic = [
      ...filesUnder('coordinator', 'protocol'),
      ...['mining-loop.ts', 'gpu-client.ts', 'worker-messages.ts', 'coordinator-link.ts'].map((f) => join(SRC, 'miner', f)),
    ];
    // (The ledger's SQL migrations are not scanned: 004 carries jobs stored before kinds existed over as what they
    // all were then, gemm jobs. History, not a dependency.)
    const named = agnostic.flatMap((file) => {
      const text = readFileSync(file, 'utf8');
      return kindNames.filter((name) => new RegExp(`\\b${name}\\b`, 'i').test(text)).map((name) => `${where(file)} names ${name}`);
    });
    expect(named).toEqual([]);
    expect(violations(agnostic, (t) => kindNames.some((name) => inFolder(t, [`work/${name}`, `miner/kinds/${name}.ts`])))).toEqual([]);
  });

  it('the power probe is Node code: it never imports the browser\'s, and the browser never imports it', () => {
    const probe = filesUnder('probe');
    expect(probe.length).toBeGreaterThan(3);
    expect(violations(probe, (t) => inFolder(t, BROWSER_FOLDERS) || BROWSER_PACKAGES.test(t))).toEqual([]);
    expect(violations(filesUnder(...BROWSER_FOLDERS), (t) => inFolder(t, ['probe']))).toEqual([]);
  });
});
