// Just enough of a PNG reader to tell a rendered page from a blank one:
// 8-bit truecolour (with or without alpha) or greyscale, not interlaced —
// what Chromium's screenshots are. No dependency beyond node:zlib.
import { inflateSync } from 'node:zlib';

export interface PngInfo {
  width: number;
  height: number;
  /** distinct pixel values (RGBA packed), counted up to `limit` */
  colours: number;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes `png` and counts its distinct colours (stops counting at `limit`). Throws on anything that is not a valid PNG. */
export function readPng(png: Buffer, limit = 10_000): PngInfo {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG: bad signature');
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  let sawEnd = false;
  const idat: Buffer[] = [];
  while (pos + 12 <= png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    if (data.length !== len) throw new Error(`truncated PNG chunk ${type}`);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8]!;
      const colourType = data[9]!;
      const interlace = data[12]!;
      channels = CHANNELS[colourType] ?? 0;
      if (depth !== 8 || !channels || interlace !== 0) throw new Error(`unsupported PNG: depth ${depth}, colour type ${colourType}, interlace ${interlace}`);
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      sawEnd = true;
      break;
    }
    pos += 12 + len;
  }
  if (!width || !height || idat.length === 0 || !sawEnd) throw new Error('incomplete PNG');

  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error(`PNG data has ${raw.length} bytes, expected ${height * (stride + 1)}`);

  const colours = new Set<number>();
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? line[x - channels]! : 0;
      const b = prev[x]!;
      const c = x >= channels ? prev[x - channels]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) v += paeth(a, b, c);
      else if (filter !== 0) throw new Error(`bad PNG filter ${filter}`);
      line[x] = v & 0xff;
    }
    if (colours.size < limit) {
      for (let x = 0; x < stride; x += channels) {
        let key = 0;
        for (let k = 0; k < channels; k++) key = key * 256 + line[x + k]!;
        colours.add(key);
      }
    }
    prev = line;
  }
  return { width, height, colours: Math.min(colours.size, limit) };
}
