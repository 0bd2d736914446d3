import { describe, expect, it } from 'vitest';
import { sdpFingerprint } from '../../../src/protocol/dtls-fingerprint.ts';

const HEX = '8E:4C:AD:A7:A1:BB:C3:AF:C5:43:E5:D5:ED:2A:01:03:67:EC:AC:B7:B6:47:5E:0F:E8:09:C3:94:4D:E8:C6:A2';
const OTHER = '60:10:7C:7F:07:65:E1:8B:43:F0:A0:3C:B7:E4:F3:74:DD:BC:0C:CB:E3:78:0C:EE:48:87:88:56:3E:2B:A1:5F';
const bytesOf = (hex: string) => Uint8Array.from(hex.split(':'), (pair) => parseInt(pair, 16));

/** An answer as node-datachannel writes it: the fingerprint at session level, CRLF line ends. */
const sdp = (...fingerprints: string[]) =>
  ['v=0', 'o=rtc 3826652307 0 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0', ...fingerprints,
    'm=application 33909 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:0', 'a=setup:active', 'a=sctp-port:5000', ''].join('\r\n');

describe('the DTLS fingerprint of an SDP', () => {
  it('reads the sha-256 fingerprint as its 32 bytes', () => {
    expect(sdpFingerprint(sdp(`a=fingerprint:sha-256 ${HEX}`))).toEqual({ ok: true, value: bytesOf(HEX) });
  });

  it('reads it whatever the case of its hex and algorithm, and with LF line ends', () => {
    const lower = sdp(`a=fingerprint:SHA-256 ${HEX.toLowerCase()}`).replaceAll('\r\n', '\n');
    expect(sdpFingerprint(lower)).toEqual({ ok: true, value: bytesOf(HEX) });
  });

  it('takes the same fingerprint repeated at session and media level (as Chromium writes it) as one', () => {
    const both = sdp(`a=fingerprint:sha-256 ${HEX}`) + `a=fingerprint:sha-256 ${HEX.toLowerCase()}\r\n`;
    expect(sdpFingerprint(both)).toEqual({ ok: true, value: bytesOf(HEX) });
  });

  it('refuses an SDP that names no fingerprint', () => {
    expect(sdpFingerprint(sdp())).toEqual({ ok: false, problem: 'names no DTLS certificate fingerprint' });
    expect(sdpFingerprint('')).toMatchObject({ ok: false });
  });

  it('refuses an SDP that names two different certificates, since which one a WebRTC stack checks is its choice', () => {
    const result = sdpFingerprint(sdp(`a=fingerprint:sha-256 ${HEX}`, `a=fingerprint:sha-256 ${OTHER}`));
    expect(result).toEqual({ ok: false, problem: 'names 2 different DTLS certificate fingerprints' });
  });

  it('refuses a fingerprint by another hash or a malformed one, rather than trust the sha-256 line beside it', () => {
    expect(sdpFingerprint(sdp(`a=fingerprint:sha-1 ${HEX.slice(0, 59)}`))).toEqual({ ok: false, problem: 'names a fingerprint by sha-1, not sha-256' });
    expect(sdpFingerprint(sdp(`a=fingerprint:sha-256 ${HEX}`, `a=fingerprint:sha-512 ${HEX}:${HEX}`))).toMatchObject({ ok: false });
    expect(sdpFingerprint(sdp(`a=fingerprint:sha-256 ${HEX.slice(0, -3)}`))).toEqual({ ok: false, problem: 'has a malformed sha-256 fingerprint' });
    expect(sdpFingerprint(sdp(`a=fingerprint:sha-256 ${HEX.replaceAll(':', '')}`))).toMatchObject({ ok: false });
    expect(sdpFingerprint(sdp(`a=fingerprint:sha-256 ${HEX} ${OTHER}`))).toMatchObject({ ok: false });
  });
});
