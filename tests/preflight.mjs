// Before the tests: make sure Chromium, Mesa's lavapipe and numpy are there, installing Debian's packages when we are root.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

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

// The node-gpu tests get WebGPU in Node from Dawn (npm `webgpu`) on lavapipe, Vulkan on the CPU. Dawn rejects
// Debian 12's Mesa 22.3 ("shaderUniform*ArrayDynamicIndexing required"); Mesa 25 from bookworm-backports works.
// Checked only where dpkg can tell the version; elsewhere the tests say what is missing.
const ICD_DIR = '/usr/share/vulkan/icd.d';
const BACKPORTS = 'deb http://deb.debian.org/debian bookworm-backports main';
const BACKPORTS_LIST = '/etc/apt/sources.list.d/backports.list';

/** Installed mesa-vulkan-drivers version, or null. */
function mesaVersion() {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) || null;
  } catch {
    return null; // dpkg-query exits 1 for a package it does not know
  }
}

function hasLavapipe() {
  const icd = existsSync(ICD_DIR) && readdirSync(ICD_DIR).some((name) => /^lvp_icd.*\.json$/.test(name));
  const version = mesaVersion();
  if (!icd || !version) return false;
  try {
    execFileSync('dpkg', ['--compare-versions', version, 'ge', '25'], { stdio: 'ignore' });
    return true;
  } catch {
    return false; // exit 1: older than 25
  }
}

/** Whether an apt source already lists bookworm-backports, one-line or deb822. */
function hasBackportsSource() {
  const lists = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').map((name) => `/etc/apt/sources.list.d/${name}`) : [])];
  return lists.some((file) => existsSync(file) && /^[^#]*bookworm-backports/m.test(readFileSync(file, 'utf8')));
}

if (existsSync('/usr/bin/dpkg-query') && !hasLavapipe()) {
  const isRoot = process.getuid?.() === 0;
  const isBookworm = existsSync('/etc/os-release') && /^VERSION_CODENAME=bookworm$/m.test(readFileSync('/etc/os-release', 'utf8'));
  if (isRoot && isBookworm && existsSync('/usr/bin/apt-get')) {
    console.log('preflight: Mesa 25\'s lavapipe is missing; installing mesa-vulkan-drivers and libvulkan1 from bookworm-backports...');
    if (!hasBackportsSource()) writeFileSync(BACKPORTS_LIST, `${BACKPORTS}\n`);
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', '-t', 'bookworm-backports', 'mesa-vulkan-drivers', 'libvulkan1'], {
      stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  if (!hasLavapipe()) {
    console.error(
      `preflight: the node-gpu tests need Mesa's lavapipe Vulkan driver, Mesa 25 or later (mesa-vulkan-drivers: ${mesaVersion() ?? 'not installed'}).\n` +
        '  On Debian 12, as root:\n' +
        `    echo "${BACKPORTS}" > ${BACKPORTS_LIST}\n` +
        '    apt-get update\n' +
        '    apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1\n' +
        '  Elsewhere: install your distribution\'s Mesa Vulkan drivers (lavapipe), version 25 or later, and the Vulkan loader.',
    );
    process.exit(1);
  }
}

// The .npy codec, CLI and README-example tests check against real numpy: /usr/bin/python3 with Debian's python3-numpy.
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
function hasNumpy() {
  try {
    execFileSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
if (!hasNumpy()) {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && existsSync('/usr/bin/apt-get') && !process.env.PYTHON) {
    console.log('preflight: numpy is missing; installing Debian\'s python3-numpy...');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', 'python3-numpy'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (!hasNumpy()) {
    console.error(`preflight: the numpy tests need ${PYTHON} with numpy.\n  Install it with: sudo apt-get install -y python3-numpy\n  or point PYTHON at a Python 3 that has numpy.`);
    process.exit(1);
  }
}

// The fleet's tests start a real PostgreSQL (Debian's server binaries) in a temporary folder.
const hasPostgres = () => ['15', '16', '17'].some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_ctl`));
if (!hasPostgres() && !process.env.ERGON_PG_BIN) {
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    console.log('preflight: PostgreSQL is missing; installing Debian\'s postgresql package...');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', 'postgresql'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (!hasPostgres()) {
    console.error('preflight: the fleet tests need PostgreSQL\'s server binaries: run `sudo apt-get install -y postgresql` (or set ERGON_PG_BIN); they skip until then.');
  }
}
