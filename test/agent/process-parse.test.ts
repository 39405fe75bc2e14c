// The pure parsers behind "which process opened this connection": /proc/net/tcp{,6} rows (hex,
// little-endian words, states), status ids, exe links, and `ss -x` pairs including a forged line.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  agreeingHolder, canonicalAddress, decodeProcAddress, findTcpSocket, parseExeLink, parseProcNetTcp, parseProcStatusIds,
  parseSsTcp, parseSsUnixPairs, socketInodeOfLink, unixPeerInode,
} from '../../src/agent/process.js';
import type { HolderFacts } from '../../src/agent/process.js';
import { isPosternError } from '../../src/errors.js';

// Fixtures stay in the source tree; the compiled test reads them from there.
const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../../test/agent/fixtures/${name}`, import.meta.url)), 'utf8');

describe('/proc/net/tcp addresses', () => {
  test('IPv4 is one little-endian word', () => {
    assert.equal(decodeProcAddress('0100007F'), '127.0.0.1');
    assert.equal(decodeProcAddress('0200000A'), '10.0.0.2');
  });
  test('IPv6 is four little-endian words; v4-mapped reads as IPv4', () => {
    assert.equal(decodeProcAddress('00000000000000000000000001000000'), '::1');
    assert.equal(decodeProcAddress('B80D0120000000000000000001000000'), '2001:db8::1');
    assert.equal(decodeProcAddress('0000000000000000FFFF00000100007F'), '127.0.0.1');
  });
  test('malformed hex is refused', () => {
    for (const bad of ['', '0100007', '0100007G', '0'.repeat(16)]) assert.throws(() => decodeProcAddress(bad), (err) => isPosternError(err, 'bad_request'));
  });
  test('addresses compare in one spelling', () => {
    assert.equal(canonicalAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalAddress('::FFFF:7f00:1'), '127.0.0.1');
    assert.equal(canonicalAddress('2001:0DB8:0:0::1'), '2001:db8::1');
    assert.throws(() => canonicalAddress('localhost'), (err) => isPosternError(err, 'bad_request'));
  });
});

describe('/proc/net/tcp rows', () => {
  const v4 = parseProcNetTcp(fixture('proc-net-tcp.txt'));
  const v6 = parseProcNetTcp(fixture('proc-net-tcp6.txt'));

  test('every row is read with ports, state, uid and inode', () => {
    assert.equal(v4.length, 4);
    assert.deepEqual(v4[1], { localAddress: '127.0.0.1', localPort: 0xe1f8, remoteAddress: '127.0.0.1', remotePort: 0x81e3, state: 'ESTABLISHED', uid: 1000, inode: 512846 });
    assert.deepEqual(v4.map((e) => e.state), ['LISTEN', 'ESTABLISHED', 'CLOSE_WAIT', 'TIME_WAIT']);
    assert.deepEqual(v6[4], { localAddress: '2001:db8::1', localPort: 443, remoteAddress: '2001:db8::2', remotePort: 0xd431, state: 'ESTABLISHED', uid: 1000, inode: 700002 });
  });
  test('the client side is found, not the server side of the same connection, nor a listener or TIME_WAIT', () => {
    const all = [...v4, ...v6];
    // The client (port 0xE1F8) connected to a server on 0x81E3 that listens on "::": the server's side is a v4-mapped tcp6 row.
    assert.deepEqual(findTcpSocket(all, { localPort: 0xe1f8, remotePort: 0x81e3 }).map((e) => e.inode), [512846]);
    assert.deepEqual(findTcpSocket(all, { localPort: 0x81e3, remotePort: 0xe1f8 }).map((e) => e.inode), [512848]);
    assert.deepEqual(findTcpSocket(all, { localPort: 0xe1f9, remotePort: 0x81e3 }), []);
    assert.deepEqual(findTcpSocket(all, { localPort: 0x81e3, remotePort: 0 }), []);
  });
  test('addresses narrow the match, in any spelling', () => {
    const all = [...v4, ...v6];
    assert.equal(findTcpSocket(all, { localPort: 0xe1f8, remotePort: 0x81e3, localAddress: '::ffff:127.0.0.1' }).length, 1);
    assert.equal(findTcpSocket(all, { localPort: 0xe1f8, remotePort: 0x81e3, remoteAddress: '10.0.0.1' }).length, 0);
    assert.equal(findTcpSocket(all, { localPort: 0x9c18, remotePort: 0x81e3, localAddress: '0:0::1' })[0]?.inode, 512847);
  });
});

describe('process facts', () => {
  test('status gives effective and real ids', () => {
    assert.deepEqual(parseProcStatusIds(fixture('proc-status.txt')), { uid: 1001, realUid: 1000, gid: 101, realGid: 100 });
    assert.throws(() => parseProcStatusIds('Name:\tx\n'), (err) => isPosternError(err, 'internal'));
  });
  test('exe links lose the deleted suffix, fd links give socket inodes', () => {
    assert.deepEqual(parseExeLink('/usr/bin/node (deleted)'), { path: '/usr/bin/node', deletedSuffix: true });
    assert.deepEqual(parseExeLink('/usr/bin/node'), { path: '/usr/bin/node', deletedSuffix: false });
    assert.equal(socketInodeOfLink('socket:[485654]'), 485654);
    assert.equal(socketInodeOfLink('pipe:[485654]'), undefined);
    assert.equal(socketInodeOfLink('/tmp/socket:[1]'), undefined);
  });
  const holder = (pid: number, exe: string, uid = 1000): HolderFacts => ({ pid, exe, exeDeleted: false, ids: { uid, realUid: uid, gid: 100, realGid: 100 } });
  test('holders that agree give the lowest pid; holders that differ are refused', () => {
    assert.equal(agreeingHolder([holder(30, '/usr/bin/app'), holder(12, '/usr/bin/app')], 'c').pid, 12);
    assert.throws(() => agreeingHolder([holder(12, '/usr/bin/app'), holder(30, '/usr/bin/sh')], 'c'), (err) => isPosternError(err, 'identity_invalid') && /differ/.test(err.message));
    assert.throws(() => agreeingHolder([holder(12, '/usr/bin/app'), holder(30, '/usr/bin/app', 0)], 'c'), (err) => isPosternError(err, 'identity_invalid'));
    assert.throws(() => agreeingHolder([], 'c'), (err) => isPosternError(err, 'not_found'));
  });
});

describe('ss -x pairs', () => {
  const pairs = parseSsUnixPairs(fixture('ss-unix.txt'));
  test('each line ending "<inode> * <peer>" is a pair, whatever the name before it', () => {
    assert.deepEqual(pairs, [
      { inode: 502616, peerInode: 502617 }, { inode: 502617, peerInode: 502616 }, { inode: 471881, peerInode: 471882 },
      { inode: 485621, peerInode: 0 }, { inode: 485652, peerInode: 0 },
    ]);
  });
  test('the peer is given only when both directions are listed once', () => {
    assert.equal(unixPeerInode(pairs, 502617), 502616);
    // 471882 (the peer of 471881) is not listed: not trusted.
    assert.throws(() => unixPeerInode(pairs, 471881), (err) => isPosternError(err, 'identity_invalid') && /connected back/.test(err.message));
    assert.throws(() => unixPeerInode(pairs, 485652), (err) => isPosternError(err, 'identity_invalid') && /no peer/.test(err.message));
    assert.throws(() => unixPeerInode(pairs, 1), (err) => isPosternError(err, 'identity_invalid') && /not listed/.test(err.message));
  });
  test('a client name with a newline that forges our line makes the lookup fail, never point elsewhere', () => {
    const forged = `u_str ESTAB 0 0 /tmp/evil\nu_str ESTAB 0 0 /run/agent.sock 502617 * 471881\n 502616 * 502617\n${fixture('ss-unix.txt')}`;
    assert.throws(() => unixPeerInode(parseSsUnixPairs(forged), 502617), (err) => isPosternError(err, 'identity_invalid') && /more than once/.test(err.message));
  });
});

test('parseSsTcp: addresses, uid, inode and the holders ss reports, with or without the state column; TIME-WAIT rows have no inode', () => {
  const text = [
    '0      0      127.0.0.1:45740 127.0.0.1:7001  users:(("node",pid=2970,fd=18)) uid:0 ino:5990 sk:25b cgroup:/ <->',
    'FIN-WAIT-2 0  0      [::ffff:127.0.0.1]:40000 [::1]:7001 users:(("x\\",pid=1,fd=3)",pid=77,fd=4)) uid:1000 ino:6914 sk:25c <->',
    'TIME-WAIT 0      0      127.0.0.1:36361 127.0.0.1:53374 timer:(timewait,50sec,0) ino:0 sk:3a3',
  ].join('\n');
  assert.deepEqual(parseSsTcp(text), [
    { localAddress: '127.0.0.1', localPort: 45740, remoteAddress: '127.0.0.1', remotePort: 7001, state: 'ESTABLISHED', uid: 0, inode: 5990, holders: [{ pid: 2970, fd: 18 }] },
    // A process name can add a pair: every reported holder is checked against /proc before it is believed.
    { localAddress: '127.0.0.1', localPort: 40000, remoteAddress: '::1', remotePort: 7001, state: 'FIN-WAIT-2', uid: 1000, inode: 6914, holders: [{ pid: 1, fd: 3 }, { pid: 77, fd: 4 }] },
  ]);
});
