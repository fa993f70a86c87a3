#include "rlmi.hpp"

#include "imps/xml_parse.hpp"

#include <openssl/rand.h>

#include <stdexcept>

namespace imps::rls {
namespace {

std::string esc(std::string_view v) { return imps::xml::escape(v); }

}  // namespace

std::string random_token(size_t bytes)
{
	std::string raw(bytes, '\0');
	if (RAND_bytes(reinterpret_cast<unsigned char *>(&raw[0]), static_cast<int>(bytes)) != 1)
		throw std::runtime_error("no randomness");
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	std::string out;
	for (unsigned char c : raw) {
		out += digits[c % 62];
		out += digits[(c / 62) % 62];
	}
	return out;
}

std::string rlmi_document(const std::string &list_uri, unsigned long long version, bool full_state,
		const std::string &name, const std::vector<Resource> &resources)
{
	std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\""
			+ esc(list_uri) + "\" version=\"" + std::to_string(version) + "\" fullState=\""
			+ (full_state ? "true" : "false") + "\">\n";
	if (!name.empty()) o += "  <name>" + esc(name) + "</name>\n";
	for (const auto &r : resources) {
		o += "  <resource uri=\"" + esc(r.uri) + "\">\n";
		if (!r.name.empty()) o += "    <name>" + esc(r.name) + "</name>\n";
		for (const auto &i : r.instances) {
			o += "    <instance id=\"" + esc(i.id) + "\" state=\"" + esc(i.state) + "\"";
			if (i.state == "terminated") o += " reason=\"" + esc(i.reason.empty() ? "noresource" : i.reason) + "\"";
			if (i.state == "active" && !i.cid.empty()) o += " cid=\"" + esc(i.cid) + "\"";
			o += "/>\n";
		}
		o += "  </resource>\n";
	}
	o += "</list>\n";
	return o;
}

std::string multipart_type(const std::string &start_cid, const std::string &boundary)
{
	// the boundary is a token (new_boundary: letters, digits, '-'), sent unquoted: belle-sip
	// (linphone) takes a quoted one with its quotes
	return "multipart/related;type=\"application/rlmi+xml\";start=\"<" + start_cid + ">\";boundary=" + boundary;
}

std::string multipart_body(const std::string &boundary, const std::vector<Part> &parts, bool brackets)
{
	std::string o;
	for (size_t i = 0; i < parts.size(); ++i) {
		const Part &p = parts[i];
		o += (i ? "\r\n--" : "--") + boundary + "\r\n";
		o += "Content-Transfer-Encoding: binary\r\n";
		// header names are case-insensitive (RFC 2045), but liblinphone looks for "Content-Id"
		o += brackets ? "Content-ID: <" + p.content_id + ">\r\n" : "Content-Id: " + p.content_id + "\r\n";
		o += "Content-Type: " + p.content_type + "\r\n\r\n";
		o += p.body;
	}
	o += "\r\n--" + boundary + "--\r\n";
	return o;
}

std::string new_boundary(const std::vector<Part> &parts)
{
	for (;;) {
		std::string b = "imps-" + random_token(12);
		bool clash = false;
		for (const auto &p : parts) clash |= p.body.find(b) != std::string::npos;
		if (!clash) return b;
	}
}

}  // namespace imps::rls
