// Before the tests: make sure Chromium is there, installing Debian's package when we are root.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(path)) {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && existsSync('/usr/bin/apt-get') && !process.env.CHROMIUM_PATH) {
    console.log('preflight: Chromium is missing; installing Debian\'s chromium package...');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (!existsSync(path)) {
    console.error(`preflight: Chromium not found at ${path}.\n  Install it with: sudo apt-get install -y chromium\n  or point CHROMIUM_PATH at a Chromium binary.`);
    process.exit(1);
  }
}
