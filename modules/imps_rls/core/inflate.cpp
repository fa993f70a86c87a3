#include "inflate.hpp"

#include <cstdint>
#include <vector>

namespace imps::rls {
namespace {

struct Bits {
	const unsigned char *p, *end;
	uint32_t buf = 0;
	int n = 0;
	bool bad = false;
	int get(int count)
	{
		while (n < count) {
			if (p == end) {
				bad = true;
				return 0;
			}
			buf |= static_cast<uint32_t>(*p++) << n;
			n += 8;
		}
		int v = static_cast<int>(buf & ((1u << count) - 1));
		buf >>= count;
		n -= count;
		return v;
	}
};

// a canonical Huffman code: counts per length, symbols in order
struct Huffman {
	int count[16] = {0};
	std::vector<int> symbol;
	bool build(const int *lengths, int n)
	{
		symbol.assign(n, 0);
		for (int i = 0; i < n; ++i) count[lengths[i]]++;
		count[0] = 0;
		int left = 1;
		for (int len = 1; len < 16; ++len) {
			left <<= 1;
			left -= count[len];
			if (left < 0) return false;  // over-subscribed
		}
		int offs[16];
		offs[1] = 0;
		for (int len = 1; len < 15; ++len) offs[len + 1] = offs[len] + count[len];
		for (int i = 0; i < n; ++i)
			if (lengths[i]) symbol[offs[lengths[i]]++] = i;
		return true;
	}
	int decode(Bits &b) const
	{
		int code = 0, first = 0, index = 0;
		for (int len = 1; len < 16; ++len) {
			code |= b.get(1);
			if (b.bad) return -1;
			int c = count[len];
			if (code - c < first) return symbol[index + (code - first)];
			index += c;
			first += c;
			first <<= 1;
			code <<= 1;
		}
		return -1;
	}
};

const int kLenBase[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
const int kLenExtra[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
const int kDistBase[] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
		4097, 6145, 8193, 12289, 16385, 24577};
const int kDistExtra[] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

bool codes(Bits &b, std::string &out, size_t max_out, const Huffman &lit, const Huffman &dist)
{
	for (;;) {
		int sym = lit.decode(b);
		if (sym < 0) return false;
		if (sym < 256) {
			if (out.size() >= max_out) return false;
			out += static_cast<char>(sym);
		} else if (sym == 256) {
			return true;
		} else {
			sym -= 257;
			if (sym >= 29) return false;
			int len = kLenBase[sym] + b.get(kLenExtra[sym]);
			int ds = dist.decode(b);
			if (ds < 0 || ds >= 30) return false;
			size_t d = static_cast<size_t>(kDistBase[ds] + b.get(kDistExtra[ds]));
			if (b.bad || d > out.size() || out.size() + len > max_out) return false;
			size_t from = out.size() - d;
			for (int i = 0; i < len; ++i) out += out[from + i];
		}
	}
}

bool fixed_block(Bits &b, std::string &out, size_t max_out)
{
	static Huffman lit, dist;
	static bool made = false;
	if (!made) {
		int l[288];
		for (int i = 0; i < 144; ++i) l[i] = 8;
		for (int i = 144; i < 256; ++i) l[i] = 9;
		for (int i = 256; i < 280; ++i) l[i] = 7;
		for (int i = 280; i < 288; ++i) l[i] = 8;
		lit.build(l, 288);
		int d[30];
		for (int &x : d) x = 5;
		dist.build(d, 30);
		made = true;
	}
	return codes(b, out, max_out, lit, dist);
}

bool dynamic_block(Bits &b, std::string &out, size_t max_out)
{
	int nlen = b.get(5) + 257, ndist = b.get(5) + 1, ncode = b.get(4) + 4;
	if (b.bad || nlen > 286 || ndist > 30) return false;
	static const int order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
	int lengths[320] = {0};
	for (int i = 0; i < ncode; ++i) lengths[order[i]] = b.get(3);
	Huffman lencode;
	if (b.bad || !lencode.build(lengths, 19)) return false;
	int index = 0;
	int all[320] = {0};
	while (index < nlen + ndist) {
		int sym = lencode.decode(b);
		if (sym < 0) return false;
		if (sym < 16) {
			all[index++] = sym;
			continue;
		}
		int len = 0, rep;
		if (sym == 16) {
			if (index == 0) return false;
			len = all[index - 1];
			rep = 3 + b.get(2);
		} else if (sym == 17) {
			rep = 3 + b.get(3);
		} else {
			rep = 11 + b.get(7);
		}
		if (b.bad || index + rep > nlen + ndist) return false;
		while (rep--) all[index++] = len;
	}
	if (all[256] == 0) return false;  // no end of block
	Huffman lit, dist;
	if (!lit.build(all, nlen) || !dist.build(all + nlen, ndist)) return false;
	return codes(b, out, max_out, lit, dist);
}

}  // namespace

bool inflate(std::string_view in, std::string &out, size_t max_out)
{
	out.clear();
	const unsigned char *p = reinterpret_cast<const unsigned char *>(in.data());
	const unsigned char *end = p + in.size();
	// the zlib wrapper: CM 8, window up to 32 KiB, header check, no preset dictionary
	if (in.size() >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && ((p[0] << 8) | p[1]) % 31 == 0 && !(p[1] & 0x20))
		p += 2;
	Bits b{p, end};
	int last = 0;
	do {
		last = b.get(1);
		int type = b.get(2);
		if (b.bad) return false;
		if (type == 0) {
			b.buf = 0;
			b.n = 0;  // to a byte boundary
			if (b.end - b.p < 4) return false;
			unsigned len = b.p[0] | (b.p[1] << 8), nlen = b.p[2] | (b.p[3] << 8);
			if (len != (~nlen & 0xffff)) return false;
			b.p += 4;
			if (static_cast<size_t>(b.end - b.p) < len || out.size() + len > max_out) return false;
			out.append(reinterpret_cast<const char *>(b.p), len);
			b.p += len;
		} else if (type == 1) {
			if (!fixed_block(b, out, max_out)) return false;
		} else if (type == 2) {
			if (!dynamic_block(b, out, max_out)) return false;
		} else {
			return false;
		}
	} while (!last);
	return true;
}

}  // namespace imps::rls
