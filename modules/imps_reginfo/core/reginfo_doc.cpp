#include "reginfo_doc.hpp"

#include "imps/hash.hpp"
#include "imps/xml_writer.hpp"

#include <cctype>
#include <cstdint>
#include <cstdio>

namespace imps::reginfo {
namespace {

constexpr const char *kNs = "urn:ietf:params:xml:ns:reginfo";
constexpr const char *kGruuNs = "urn:ietf:params:xml:ns:gruuinfo";

// XML 1.0 has no representation for most control characters, and the document is declared
// UTF-8: replace control characters, invalid UTF-8 and non-characters so that a hostile Call-ID
// or display name cannot make the document ill-formed.
std::string clean(const std::string &in)
{
	static const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
	std::string out;
	out.reserve(in.size());
	const auto *p = reinterpret_cast<const unsigned char *>(in.data());
	const size_t n = in.size();
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c < 0x80) {
			out += (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : static_cast<char>(c);
			++i;
			continue;
		}
		size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
		if (len == 0 || (len == 3 && c > 0xEF) || i + len > n) {
			out += kReplacement;
			++i;
			continue;
		}
		uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
		bool ok = true;
		for (size_t k = 1; k < len; ++k) {
			if ((p[i + k] & 0xC0) != 0x80) {
				ok = false;
				break;
			}
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
		if (!ok || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE
				|| cp == 0xFFFF) {
			out += kReplacement;
			++i;
			continue;
		}
		out.append(in, i, len);
		i += len;
	}
	return out;
}

std::string lower(std::string s)
{
	for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	return s;
}

std::string qvalue(int q)
{
	char buf[16];
	if (q % 100 == 0)
		std::snprintf(buf, sizeof(buf), "%d.%d", q / 1000, (q % 1000) / 100);
	else if (q % 10 == 0)
		std::snprintf(buf, sizeof(buf), "%d.%02d", q / 1000, (q % 1000) / 10);
	else
		std::snprintf(buf, sizeof(buf), "%d.%03d", q / 1000, q % 1000);
	return buf;
}

}  // namespace

const char *reg_state_name(RegState s) noexcept
{
	switch (s) {
		case RegState::Init: return "init";
		case RegState::Active: return "active";
		case RegState::Terminated: return "terminated";
	}
	return "init";
}

std::string contact_event(Change change, Cause cause, long long prev_expires_at,
		long long new_expires_at, const std::string &admin_event)
{
	switch (change) {
		case Change::Insert: return cause == Cause::Register ? "registered" : "created";
		case Change::Update:
			if (prev_expires_at > 0 && new_expires_at > 0 && new_expires_at < prev_expires_at)
				return "shortened";
			return "refreshed";
		case Change::Delete:
			if (cause == Cause::Register) return "unregistered";
			if (cause == Cause::Admin && !admin_event.empty()) return admin_event;
			return "deactivated";
		case Change::Expire: return "expired";
	}
	return "refreshed";
}

std::string registration_id(const std::string &aor) { return "r" + sha256_hex(aor).substr(0, 16); }

std::string contact_id(const std::string &aor, const std::string &binding_key)
{
	return "c" + sha256_hex(aor + '\n' + binding_key).substr(0, 16);
}

std::string build(const Document &doc)
{
	bool gruu = false;
	for (const auto &c : doc.contacts)
		if (!c.pub_gruu.empty() || !c.temp_gruu.empty()) gruu = true;

	XmlWriter w;
	w.start("reginfo");
	w.attr("xmlns", kNs);
	if (gruu) w.attr("xmlns:gr", kGruuNs);
	w.attr("version", std::to_string(doc.version));
	w.attr("state", doc.full ? "full" : "partial");
	w.start("registration");
	w.attr("aor", clean(doc.aor));
	w.attr("id", doc.reg_id);
	w.attr("state", reg_state_name(doc.state));
	for (const auto &c : doc.contacts) {
		w.start("contact");
		w.attr("id", c.id);
		w.attr("state", c.active ? "active" : "terminated");
		w.attr("event", c.event);
		if (c.duration_registered >= 0)
			w.attr("duration-registered", std::to_string(c.duration_registered));
		if (c.expires >= 0) w.attr("expires", std::to_string(c.expires));
		if (c.q >= 0) w.attr("q", qvalue(c.q));
		if (!c.callid.empty()) w.attr("callid", clean(c.callid));
		if (c.cseq >= 0) w.attr("cseq", std::to_string(c.cseq));
		w.start("uri");
		w.text(clean(c.uri));
		w.end();
		if (!c.display_name.empty()) {
			w.start("display-name");
			w.text(clean(c.display_name));
			w.end();
		}
		for (const auto &p : c.params) {
			w.start("unknown-param");
			w.attr("name", clean(p.name));
			if (!p.value.empty()) w.text(clean(p.value));
			w.end();
		}
		if (!c.pub_gruu.empty()) {
			w.start("gr:pub-gruu");
			w.attr("uri", clean(c.pub_gruu));
			w.end();
		}
		if (!c.temp_gruu.empty()) {
			w.start("gr:temp-gruu");
			w.attr("uri", clean(c.temp_gruu));
			w.attr("first-cseq", std::to_string(c.temp_gruu_first_cseq >= 0 ? c.temp_gruu_first_cseq : 0));
			w.end();
		}
		w.end();
	}
	w.end();
	w.end();
	return w.finish();
}

std::vector<ContactParam> parse_contact_params(const std::string &raw)
{
	std::vector<ContactParam> out;
	size_t i = 0;
	const size_t n = raw.size();
	while (i < n) {
		while (i < n && (raw[i] == ';' || std::isspace(static_cast<unsigned char>(raw[i])))) ++i;
		if (i >= n) break;
		size_t ns = i;
		while (i < n && raw[i] != '=' && raw[i] != ';' && !std::isspace(static_cast<unsigned char>(raw[i]))) ++i;
		std::string name = raw.substr(ns, i - ns);
		while (i < n && std::isspace(static_cast<unsigned char>(raw[i]))) ++i;
		std::string value;
		if (i < n && raw[i] == '=') {
			++i;
			while (i < n && std::isspace(static_cast<unsigned char>(raw[i]))) ++i;
			if (i < n && raw[i] == '"') {
				++i;
				while (i < n && raw[i] != '"') {
					if (raw[i] == '\\' && i + 1 < n) ++i;
					value += raw[i++];
				}
				if (i < n) ++i;  // closing quote
			} else {
				size_t vs = i;
				while (i < n && raw[i] != ';' && !std::isspace(static_cast<unsigned char>(raw[i]))) ++i;
				value = raw.substr(vs, i - vs);
			}
		}
		if (name.empty()) continue;
		std::string lname = lower(name);
		if (lname == "expires" || lname == "q" || lname == "pub-gruu" || lname == "temp-gruu")
			continue;
		out.push_back({name, value});
	}
	return out;
}

}  // namespace imps::reginfo
