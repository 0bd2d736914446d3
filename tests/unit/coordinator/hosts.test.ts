// Which Host names the coordinator serves: addresses and localhost always, names only when configured.
import { describe, expect, it } from 'vitest';
import { hostName, servedHosts } from '../../../src/coordinator/hosts.ts';

describe('served hosts', () => {
  it('reads the name of a Host header', () => {
    expect(hostName('Ergon.Example.org.:8443')).toBe('ergon.example.org');
    expect(hostName('[::1]:8787')).toBe('::1');
    expect(hostName('127.0.0.1')).toBe('127.0.0.1');
  });

  it('serves addresses, localhost, the name it listens on and configured names, and no other name', () => {
    const served = servedHosts('ergon.lan', ['ergon.example.org']);
    for (const host of ['127.0.0.1:8787', '[::1]:8787', '192.168.1.20', 'localhost:5173', 'ergon.lan:8787', 'ergon.example.org']) {
      expect(served(host), host).toBe(true);
    }
    for (const host of ['rebind.example:8787', 'evil.localhost', 'example.org', '127.0.0.1.nip.io', '']) {
      expect(served(host), host).toBe(false);
    }
  });
});
