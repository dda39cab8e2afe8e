import { execFile } from "node:child_process"
import { writeFileSync } from "node:fs"

/** LINKTYPE_RAW: each record is an IP packet, no link layer. */
const LINKTYPE_RAW = 101

const ipv4Checksum = (header: Buffer): number => {
  let sum = 0
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

/**
 * Writes `datagrams` (UDP payloads, in order) as a classic pcap of IPv4/UDP packets from
 * 127.0.0.1:`srcPort` to 127.0.0.1:`dstPort`, one millisecond apart (UDP checksum 0: none).
 */
export const writeUdpPcap = (path: string, datagrams: ReadonlyArray<Uint8Array>, srcPort: number, dstPort: number): void => {
  const global = Buffer.alloc(24)
  global.writeUInt32LE(0xa1b2c3d4, 0)
  global.writeUInt16LE(2, 4)
  global.writeUInt16LE(4, 6)
  global.writeUInt32LE(65535, 16)
  global.writeUInt32LE(LINKTYPE_RAW, 20)
  const records = datagrams.map((payload, i) => {
    const ip = Buffer.alloc(20)
    ip[0] = 0x45
    ip.writeUInt16BE(20 + 8 + payload.byteLength, 2)
    ip.writeUInt16BE(i & 0xffff, 4)
    ip.writeUInt16BE(0x4000, 6)
    ip[8] = 64
    ip[9] = 17
    ip.writeUInt32BE(0x7f000001, 12)
    ip.writeUInt32BE(0x7f000001, 16)
    ip.writeUInt16BE(ipv4Checksum(ip), 10)
    const udp = Buffer.alloc(8)
    udp.writeUInt16BE(srcPort, 0)
    udp.writeUInt16BE(dstPort, 2)
    udp.writeUInt16BE(8 + payload.byteLength, 4)
    const record = Buffer.alloc(16)
    record.writeUInt32LE(1_700_000_000 + Math.floor(i / 1000), 0)
    record.writeUInt32LE((i % 1000) * 1000, 4)
    record.writeUInt32LE(28 + payload.byteLength, 8)
    record.writeUInt32LE(28 + payload.byteLength, 12)
    return Buffer.concat([record, ip, udp, payload])
  })
  writeFileSync(path, Buffer.concat([global, ...records]))
}

/**
 * `tshark -r path -d udp.port==port,rtp -T fields -e …`: one row per packet, one array per field
 * (all occurrences of a repeated field, in order).
 */
export const tsharkFields = (path: string, port: number, fields: ReadonlyArray<string>): Promise<Array<Array<Array<string>>>> =>
  new Promise((resolve, reject) =>
    execFile(
      "tshark",
      [
        "-r",
        path,
        "-d",
        `udp.port==${port},rtp`,
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=;",
        ...fields.flatMap((f) => ["-e", f])
      ],
      { maxBuffer: 64 * 1024 * 1024 },
      (error: Error | null, stdout) => {
        if (error !== null) return reject(error)
        const rows = stdout.split("\n").filter((line) => line.length > 0)
        resolve(rows.map((row) => row.split("\t").map((cell) => cell === "" ? [] : cell.split(";"))))
      }
    )
  )
