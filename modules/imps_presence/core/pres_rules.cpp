#include "pres_rules.hpp"

#include "engine.hpp"
#include "pidf.hpp"

#include "imps/sip_text.hpp"
#include "imps/xml_parse.hpp"

#include <cstring>

namespace imps::presence {
namespace {

const char *kCp = "urn:ietf:params:xml:ns:common-policy";
const char *kPr = "urn:ietf:params:xml:ns:pres-rules";
const char *kOmaCp = "urn:oma:xml:xdm:common-policy";

using imps::xml::prop;
using imps::xml::str_of;
std::string text(xmlNodePtr n) { return imps::xml::content(n); }

bool is(xmlNodePtr n, const char *ns, const char *local = nullptr)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && str_of(n->ns->href) == ns
			&& (!local || str_of(n->name) == local);
}

// "sip:User@Host;p" or "User@Host" -> "user@host": uri_identity's canonical form (params
// dropped, host lowercased), the user lowercased too, as the SQL rules compare; another
// scheme (tel:) as written, lowercased
std::string identity(std::string_view uri)
{
	std::string s = trim(std::string(uri));
	size_t colon = s.find(':'), at = s.find('@');
	if (colon == std::string::npos || (at != std::string::npos && at < colon)) s = "sip:" + s;
	std::string id = uri_identity(s);
	return lower(id.empty() ? s : id);
}

std::string domain_of(const std::string &id)
{
	size_t at = id.rfind('@');
	return at == std::string::npos ? id : id.substr(at + 1);
}

void read_set(xmlNodePtr parent, const char *all, bool &all_flag,
		std::set<std::pair<std::string, std::string>> &set)
{
	for (xmlNodePtr c = parent->children; c; c = c->next) {
		if (!is(c, kPr)) continue;
		std::string name = str_of(c->name);
		if (name == all) all_flag = true;
		else set.emplace(name, text(c));
	}
}

void read_rule(xmlNodePtr r, PresRule &pr)
{
	pr.id = prop(r, "id");
	for (xmlNodePtr part = r->children; part; part = part->next) {
		if (!is(part, kCp)) continue;
		std::string kind = str_of(part->name);
		for (xmlNodePtr c = part->children; c; c = c->next) {
			if (c->type != XML_ELEMENT_NODE) continue;
			if (kind == "conditions") {
				if (is(c, kCp, "identity")) {
					pr.has_identity = true;
					for (xmlNodePtr i = c->children; i; i = i->next) {
						if (is(i, kCp, "one")) {
							pr.ones.push_back(identity(prop(i, "id")));
						} else if (is(i, kCp, "many")) {
							PresRule::Many m;
							m.domain = lower(prop(i, "domain"));
							for (xmlNodePtr e = i->children; e; e = e->next)
								if (is(e, kCp, "except")) {
									if (!prop(e, "id").empty()) m.except_ids.push_back(identity(prop(e, "id")));
									if (!prop(e, "domain").empty()) m.except_domains.push_back(lower(prop(e, "domain")));
								}
							pr.manys.push_back(std::move(m));
						}
					}
				} else if (is(c, kCp, "validity")) {
					long long from = 0;
					for (xmlNodePtr v = c->children; v; v = v->next) {
						long long ms = 0;
						if (is(v, kCp, "from") && parse_datetime(text(v), ms)) from = ms / 1000;
						else if (is(v, kCp, "until") && parse_datetime(text(v), ms))
							pr.validity.emplace_back(from, ms / 1000);
					}
					if (pr.validity.empty()) pr.unsupported = true;
				} else if (is(c, kOmaCp, "other-identity")) {
					pr.other_identity = true;
				} else {
					// sphere, OMA external-list and anonymous-request, extensions: this
					// server cannot tell, so the condition is false (RFC 4745 section 7)
					pr.unsupported = true;
				}
			} else if (kind == "actions") {
				if (is(c, kPr, "sub-handling")) {
					std::string v = text(c);
					pr.sub_handling = v == "allow" ? 30 : v == "polite-block" ? 20 : v == "confirm" ? 10 : 0;
				}
			} else if (kind == "transformations" && is(c, kPr)) {
				std::string name = str_of(c->name);
				if (name == "provide-services") read_set(c, "all-services", pr.all_services, pr.services);
				else if (name == "provide-persons") read_set(c, "all-persons", pr.all_persons, pr.persons);
				else if (name == "provide-devices") read_set(c, "all-devices", pr.all_devices, pr.devices);
				else if (name == "provide-all-attributes") pr.all_attributes = true;
				else if (name == "provide-unknown-attribute") {
					if (text(c) == "true" || text(c) == "1") pr.attributes.insert("unknown:" + prop(c, "ns") + " " + prop(c, "name"));
				}
				else if (name == "provide-user-input") {
					// enumerated: false 0, bare 10, thresholds 20, full 30 (3.3.2.12)
					std::string v = text(c);
					if (v == "bare" || v == "thresholds" || v == "full") pr.attributes.insert("user-input=" + v);
				} else if (name.rfind("provide-", 0) == 0 && (text(c) == "true" || text(c) == "1"))
					pr.attributes.insert(name.substr(8));  // xs:boolean: "true" or "1"
			}
		}
	}
}

bool identity_matches(const PresRule &r, const std::string &w)
{
	for (const auto &o : r.ones)
		if (o == w) return true;
	const std::string d = domain_of(w);
	for (const auto &m : r.manys) {
		if (!m.domain.empty() && m.domain != d) continue;
		bool excepted = false;
		for (const auto &e : m.except_ids) excepted |= e == w;
		for (const auto &e : m.except_domains) excepted |= e == d;
		if (!excepted) return true;
	}
	return false;
}

}  // namespace

bool parse_pres_rules(std::string_view xml, PresRules &out, std::string *why)
{
	auto p = imps::xml::parse_safe(xml);
	if (!p.ok) {
		if (why) *why = "not well-formed";
		return false;
	}
	xmlNodePtr root = xmlDocGetRootElement(p.doc.get());
	if (!is(root, kCp, "ruleset")) {
		if (why) *why = "the root is not a common-policy ruleset";
		return false;
	}
	out.rules.clear();
	for (xmlNodePtr r = root->children; r; r = r->next)
		if (is(r, kCp, "rule")) {
			PresRule pr;
			read_rule(r, pr);
			out.rules.push_back(std::move(pr));
		}
	return true;
}

Grant evaluate(const PresRules &rules, std::string_view watcher, long long now)
{
	const std::string w = identity(watcher);
	// OMA other-identity: true when no identity condition of any rule names the watcher
	bool named = false;
	for (const auto &r : rules.rules)
		if (r.has_identity && identity_matches(r, w)) named = true;
	Grant g;
	for (const auto &r : rules.rules) {
		if (r.unsupported) continue;
		if (r.has_identity && !identity_matches(r, w)) continue;
		if (r.other_identity && named) continue;
		if (!r.validity.empty()) {
			bool in = false;
			for (const auto &[from, until] : r.validity) in |= now >= from && now < until;
			if (!in) continue;
		}
		g.matched = true;
		g.sub_handling = std::max(g.sub_handling, r.sub_handling);
		g.all_services |= r.all_services;
		g.all_persons |= r.all_persons;
		g.all_devices |= r.all_devices;
		g.all_attributes |= r.all_attributes;
		g.services.insert(r.services.begin(), r.services.end());
		g.persons.insert(r.persons.begin(), r.persons.end());
		g.devices.insert(r.devices.begin(), r.devices.end());
		g.attributes.insert(r.attributes.begin(), r.attributes.end());
	}
	return g;
}

std::optional<Action> decision(const Grant &g)
{
	if (!g.matched) return std::nullopt;
	if (g.sub_handling >= 30) return Action::Allow;
	if (g.sub_handling >= 20) return Action::PoliteBlock;
	if (g.sub_handling >= 10) return Action::Confirm;
	return Action::Block;
}

bool grants_everything(const Grant &g)
{
	return g.all_services && g.all_persons && g.all_devices && g.all_attributes;
}

std::string grant_key(const Grant &g)
{
	std::string k;
	k += g.all_services ? 'S' : 's';
	k += g.all_persons ? 'P' : 'p';
	k += g.all_devices ? 'D' : 'd';
	k += g.all_attributes ? 'A' : 'a';
	for (const auto *set : {&g.services, &g.persons, &g.devices}) {
		k += '|';
		for (const auto &[kind, v] : *set) k += kind + '=' + v + '\n';
	}
	k += '|';
	for (const auto &a : g.attributes) k += a + '\n';
	return k;
}

namespace {

const char *kPidfUri = "urn:ietf:params:xml:ns:pidf";
const char *kDm = "urn:ietf:params:xml:ns:pidf:data-model";
const char *kRpid = "urn:ietf:params:xml:ns:pidf:rpid";

// namespaces whose elements have a provide-* permission of their own (RFC 5025 3.3.2):
// an element of them without one is never "unknown"
bool known_ns(const std::string &ns)
{
	return ns == kPidfUri || ns == kDm || ns == kRpid;
}

std::string child_text(xmlNodePtr parent, const char *ns, const char *local)
{
	for (xmlNodePtr c = parent->children; c; c = c->next)
		if (is(c, ns, local)) return text(c);
	return {};
}

bool has(const std::set<std::pair<std::string, std::string>> &set, const char *kind, const std::string &v)
{
	return !v.empty() && set.count({kind, v});
}

std::string scheme_of(const std::string &uri)
{
	size_t c = uri.find(':');
	return c == std::string::npos ? std::string() : uri.substr(0, c);
}

// URI equivalence, loosely: scheme and host case-insensitive, parameters ignored
bool same_uri(const std::string &a, const std::string &b)
{
	return identity(a) == identity(b);
}

bool service_granted(xmlNodePtr t, const Grant &g)
{
	if (g.all_services) return true;
	if (has(g.services, "occurrence-id", prop(t, "id"))) return true;
	if (has(g.services, "class", child_text(t, kRpid, "class"))) return true;
	std::string contact = child_text(t, kPidfUri, "contact");
	if (!contact.empty()) {
		if (has(g.services, "service-uri-scheme", scheme_of(contact))) return true;
		for (const auto &[kind, v] : g.services)
			if (kind == "service-uri" && same_uri(v, contact)) return true;
	}
	return false;
}

bool person_granted(xmlNodePtr p, const Grant &g)
{
	return g.all_persons || has(g.persons, "occurrence-id", prop(p, "id"))
			|| has(g.persons, "class", child_text(p, kRpid, "class"));
}

bool device_granted(xmlNodePtr d, const Grant &g)
{
	if (g.all_devices || has(g.devices, "occurrence-id", prop(d, "id"))
			|| has(g.devices, "class", child_text(d, kRpid, "class")))
		return true;
	std::string id = child_text(d, kDm, "deviceID");
	for (const auto &[kind, v] : g.devices)
		if (kind == "deviceID" && !id.empty() && same_uri(v, id)) return true;
	return false;
}

// Is child c of a tuple, person or device ("tuple", "person", "device") given to the
// watcher?
bool attribute_granted(xmlNodePtr c, const std::string &where, const Grant &g)
{
	if (g.all_attributes) return true;
	std::string ns = c->ns ? str_of(c->ns->href) : std::string();
	std::string local = str_of(c->name);
	// always reported (3.3.2)
	if (ns == kPidfUri && (local == "contact" || local == "status" || local == "timestamp")) return true;
	if (ns == kDm && local == "timestamp") return true;
	if (ns == kRpid && local == "service-class") return true;
	if (where == "device" && ns == kDm && local == "deviceID") return true;
	if ((ns == kPidfUri || ns == kDm) && local == "note") return g.attributes.count("note") > 0;
	if (ns == kDm && local == "deviceID") return g.attributes.count("deviceID") > 0;
	if (ns == kRpid && local == "user-input")
		return g.attributes.count("user-input=bare") || g.attributes.count("user-input=thresholds")
				|| g.attributes.count("user-input=full");
	if (ns == kRpid) return g.attributes.count(local) > 0;  // activities, class, mood, place-is...
	if (known_ns(ns)) return false;
	return g.attributes.count("unknown:" + ns + " " + local) > 0;
}

// ids: the set the element was granted from: a <class> that identified it stays (else
// filtering the result again would drop the element: RFC 5025 section 4 wants F(F(D)) = F(D))
void filter_children(xmlNodePtr e, const std::string &where, const Grant &g,
		const std::set<std::pair<std::string, std::string>> &ids)
{
	for (xmlNodePtr c = e->children, next; c; c = next) {
		next = c->next;
		if (c->type != XML_ELEMENT_NODE) continue;
		bool identifies = is(c, kRpid, "class") && ids.count({"class", text(c)});
		if (!identifies && !attribute_granted(c, where, g)) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		} else if (!g.all_attributes && is(c, kRpid, "user-input") && !g.attributes.count("user-input=full")) {
			// bare: neither idle-threshold nor last-input; thresholds: idle-threshold only
			xmlUnsetProp(c, BAD_CAST "last-input");
			if (!g.attributes.count("user-input=thresholds")) xmlUnsetProp(c, BAD_CAST "idle-threshold");
		} else if (!g.all_attributes && is(c, kPidfUri, "status")) {
			// in <status> only <basic> is always reported; RPID's status extensions follow
			// their own permissions
			for (xmlNodePtr s = c->children, sn; s; s = sn) {
				sn = s->next;
				if (s->type == XML_ELEMENT_NODE && !is(s, kPidfUri, "basic") && !attribute_granted(s, where, g)) {
					xmlUnlinkNode(s);
					xmlFreeNode(s);
				}
			}
		}
	}
}

}  // namespace

std::string filter_document(std::string_view pidf, const Grant &g)
{
	if (grants_everything(g)) return std::string(pidf);
	auto p = imps::xml::parse_safe(pidf);
	xmlNodePtr root = p.ok ? xmlDocGetRootElement(p.doc.get()) : nullptr;
	if (!root || !is(root, kPidfUri, "presence")) return std::string();
	for (xmlNodePtr c = root->children, next; c; c = next) {
		next = c->next;
		if (c->type != XML_ELEMENT_NODE) continue;
		const char *where = nullptr;
		const std::set<std::pair<std::string, std::string>> *ids = nullptr;
		bool keep = false;
		if (is(c, kPidfUri, "tuple")) {
			where = "tuple";
			ids = &g.services;
			keep = service_granted(c, g);
		} else if (is(c, kDm, "person")) {
			where = "person";
			ids = &g.persons;
			keep = person_granted(c, g);
		} else if (is(c, kDm, "device")) {
			where = "device";
			ids = &g.devices;
			keep = device_granted(c, g);
		} else if (is(c, kPidfUri, "note")) {
			keep = g.all_attributes || g.attributes.count("note");
		} else {
			keep = g.all_attributes;
		}
		if (!keep) {
			xmlUnlinkNode(c);
			xmlFreeNode(c);
			continue;
		}
		if (where) filter_children(c, where, g, g.all_attributes ? std::set<std::pair<std::string, std::string>>() : *ids);
	}
	xmlChar *out = nullptr;
	int len = 0;
	xmlDocDumpMemoryEnc(p.doc.get(), &out, &len, "UTF-8");
	std::string s = out ? std::string(reinterpret_cast<const char *>(out), len) : std::string();
	if (out) xmlFree(out);
	return s;
}

}  // namespace imps::presence
