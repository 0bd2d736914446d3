// A sysfs tree written by code, standing in for /sys where this machine has no readable RAPL or hwmon (checked:
// no /sys/class/powercap, no /sys/class/hwmon here): the probe reads it exactly as it reads the real files.
import { mkdir, mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class FakeSysfs {
  private writes = 0;

  private constructor(readonly root: string) {}

  static async create(): Promise<FakeSysfs> {
    return new FakeSysfs(await mkdtemp(join(tmpdir(), 'ergon-sysfs-')));
  }

  async write(path: string, value: string | number): Promise<void> {
    const full = join(this.root, path);
    await mkdir(join(full, '..'), { recursive: true });
    // Written aside and renamed, so that a reader never sees the empty file a truncating write leaves for a moment
    // (a kernel attribute is never half-written).
    const aside = `${full}.${this.writes++}.new`;
    await writeFile(aside, `${value}\n`);
    await rename(aside, full);
  }

  /** A RAPL zone as the kernel lays it out: name, energy_uj and max_energy_range_uj. */
  async raplZone(zone: string, name: string, energyUj: number, maxUj: number): Promise<void> {
    await this.write(`class/powercap/${zone}/name`, name);
    await this.write(`class/powercap/${zone}/energy_uj`, energyUj);
    await this.write(`class/powercap/${zone}/max_energy_range_uj`, maxUj);
  }

  setRapl(zone: string, energyUj: number): Promise<void> {
    return this.write(`class/powercap/${zone}/energy_uj`, energyUj);
  }
}
