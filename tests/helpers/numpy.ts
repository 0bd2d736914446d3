// Runs real numpy (/usr/bin/python3 with Debian's python3-numpy) from tests: the reference for .npy files and products.
import { execFileSync, spawnSync } from 'node:child_process';

export const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';

/** Why numpy cannot run here, or undefined when it can. tests/preflight.mjs installs it (or says how). */
export function numpyMissing(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' });
  if (probe.status === 0) return undefined;
  return `${PYTHON} with numpy is needed (Debian: apt-get install -y python3-numpy): ${probe.error?.message ?? probe.stderr.trim()}`;
}

/** Runs a Python program (with numpy) in `cwd`; returns its stdout, and throws with its stderr when it fails. */
export function python(program: string, cwd: string, env: Record<string, string> = {}): string {
  return execFileSync(PYTHON, ['-c', program], { cwd, encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}
