#include "winfo_doc.hpp"

#include "imps/xml_writer.hpp"

#include <cstdint>

namespace imps::presence {
namespace {

constexpr const char *kNs = "urn:ietf:params:xml:ns:watcherinfo";

// Length of the well-formed UTF-8 sequence at p[0..n) that encodes an XML Char (XML 1.0, 2.2),
// or 0. ASCII is handled by the caller.
size_t xml_char_len(const unsigned char *p, size_t n)
{
	const unsigned char c = p[0];
	size_t len;
	uint32_t cp;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n) return 0;
	for (size_t k = 1; k < len; ++k) {
		if ((p[k] & 0xC0) != 0x80) return 0;
		cp = (cp << 6) | (p[k] & 0x3F);
	}
	static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < kMin[len] || cp > 0x10FFFF) return 0;             // overlong, out of range
	if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF) return 0;  // no Char
	return len;
}

// The document is declared UTF-8 and XML 1.0 has no representation for most control
// characters: anything from the wire goes through this before it reaches the writer.
std::string clean(std::string_view in)
{
	std::string out;
	out.reserve(in.size());
	const auto *p = reinterpret_cast<const unsigned char *>(in.data());
	for (size_t i = 0; i < in.size();) {
		const unsigned char c = p[i];
		if (c < 0x80) {
			const bool ctl = (c < 0x20 && c != '\t') || c == 0x7F;
			out += ctl ? ' ' : static_cast<char>(c);
			++i;
		} else if (size_t len = xml_char_len(p + i, in.size() - i)) {
			out.append(in.substr(i, len));
			i += len;
		} else {
			out += "\xEF\xBF\xBD";  // U+FFFD, one per offending byte
			++i;
		}
	}
	return out;
}

}  // namespace

std::string winfo_document(unsigned long long version, bool full, std::string_view resource_uri,
		const std::vector<WatcherEntry> &watchers)
{
	XmlWriter w;
	w.start("watcherinfo");
	w.attr("xmlns", kNs);
	w.attr("version", std::to_string(version));
	w.attr("state", full ? "full" : "partial");
	w.start("watcher-list");
	w.attr("resource", clean(resource_uri));
	w.attr("package", "presence");
	for (const auto &e : watchers) {
		w.start("watcher");
		w.attr("id", clean(e.id));
		w.attr("status", clean(e.status));
		w.attr("event", clean(e.event));
		if (!e.display_name.empty()) w.attr("display-name", clean(e.display_name));
		if (e.duration_subscribed >= 0)
			w.attr("duration-subscribed", std::to_string(e.duration_subscribed));
		if (e.expiration >= 0) w.attr("expiration", std::to_string(e.expiration));
		w.text(clean(e.uri));
		w.end();
	}
	w.end();
	w.end();
	return w.finish();
}

}  // namespace imps::presence
