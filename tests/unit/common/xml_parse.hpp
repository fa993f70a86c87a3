// Test helper: parses a document with libxml2 (no network, no entity expansion) and reads it
// back through XPath, so tests compare values field by field instead of matching substrings.
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace imps::test {

class ParsedXml {
public:
	// ns: prefix -> namespace URI pairs registered for XPath.
	explicit ParsedXml(const std::string &xml,
			std::vector<std::pair<std::string, std::string>> ns = {})
		: ns_(std::move(ns))
	{
		errors_.clear();
		xmlSetStructuredErrorFunc(&errors_, &ParsedXml::on_error);
		doc_ = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "mem.xml", nullptr,
				XML_PARSE_NONET);
		xmlSetStructuredErrorFunc(nullptr, nullptr);
		if (doc_) {
			ctx_ = xmlXPathNewContext(doc_);
			for (const auto &p : ns_)
				xmlXPathRegisterNs(ctx_, BAD_CAST p.first.c_str(), BAD_CAST p.second.c_str());
		}
	}
	~ParsedXml()
	{
		if (ctx_) xmlXPathFreeContext(ctx_);
		if (doc_) xmlFreeDoc(doc_);
	}
	ParsedXml(const ParsedXml &) = delete;
	ParsedXml &operator=(const ParsedXml &) = delete;

	bool ok() const { return doc_ != nullptr; }
	const std::string &errors() const { return errors_; }
	xmlDocPtr doc() const { return doc_; }
	xmlNodePtr root() const { return doc_ ? xmlDocGetRootElement(doc_) : nullptr; }

	std::vector<xmlNodePtr> nodes(const std::string &xpath, xmlNodePtr rel = nullptr) const
	{
		std::vector<xmlNodePtr> out;
		if (!ctx_) return out;
		ctx_->node = rel ? rel : reinterpret_cast<xmlNodePtr>(doc_);
		xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST xpath.c_str(), ctx_);
		if (!o) return out;
		if (o->type == XPATH_NODESET && o->nodesetval)
			for (int i = 0; i < o->nodesetval->nodeNr; ++i) out.push_back(o->nodesetval->nodeTab[i]);
		xmlXPathFreeObject(o);
		return out;
	}

	xmlNodePtr node(const std::string &xpath, xmlNodePtr rel = nullptr) const
	{
		auto v = nodes(xpath, rel);
		return v.size() == 1 ? v[0] : nullptr;
	}

	static std::optional<std::string> attr(xmlNodePtr n, const char *name, const char *ns = nullptr)
	{
		if (!n) return std::nullopt;
		xmlChar *v = ns ? xmlGetNsProp(n, BAD_CAST name, BAD_CAST ns) : xmlGetNoNsProp(n, BAD_CAST name);
		if (!v) return std::nullopt;
		std::string s(reinterpret_cast<const char *>(v));
		xmlFree(v);
		return s;
	}

	static std::string text(xmlNodePtr n)
	{
		if (!n) return {};
		xmlChar *v = xmlNodeGetContent(n);
		if (!v) return {};
		std::string s(reinterpret_cast<const char *>(v));
		xmlFree(v);
		return s;
	}

	static std::string name(xmlNodePtr n) { return n ? reinterpret_cast<const char *>(n->name) : ""; }
	static std::string ns_uri(xmlNodePtr n)
	{
		return n && n->ns && n->ns->href ? reinterpret_cast<const char *>(n->ns->href) : "";
	}

	// Element children in document order.
	static std::vector<xmlNodePtr> children(xmlNodePtr n)
	{
		std::vector<xmlNodePtr> out;
		for (xmlNodePtr c = n ? n->children : nullptr; c; c = c->next)
			if (c->type == XML_ELEMENT_NODE) out.push_back(c);
		return out;
	}

	static std::vector<std::string> attr_names(xmlNodePtr n)
	{
		std::vector<std::string> out;
		for (xmlAttrPtr a = n ? n->properties : nullptr; a; a = a->next)
			out.push_back(reinterpret_cast<const char *>(a->name));
		return out;
	}

private:
	static void on_error(void *user, xmlErrorPtr e)
	{
		auto *s = static_cast<std::string *>(user);
		if (e && e->message) *s += e->message;
	}

	std::vector<std::pair<std::string, std::string>> ns_;
	xmlDocPtr doc_ = nullptr;
	xmlXPathContextPtr ctx_ = nullptr;
	std::string errors_;
};

}  // namespace imps::test
