#include "imps/xml_parse.hpp"

#include "imps/sip_text.hpp"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include <climits>
#include <new>

namespace imps::xml {
namespace {

struct CtxtFree {
	void operator()(xmlParserCtxt *c) const
	{
		if (c) xmlFreeParserCtxt(c);
	}
};

// What one parse saw; reached from the SAX callbacks through ctxt->_private.
struct ParseState {
	bool doctype = false;
	bool error = false;
	int error_line = 0;
};

ParseState *state_of(void *ctx)
{
	auto *ctxt = static_cast<xmlParserCtxtPtr>(ctx);
	return ctxt ? static_cast<ParseState *>(ctxt->_private) : nullptr;
}

// <!DOCTYPE name ...: called before the internal subset is read, so no entity declaration of
// a billion-laughs or quadratic-blowup body is ever parsed, let alone expanded.
void on_internal_subset(void *ctx, const xmlChar *, const xmlChar *, const xmlChar *)
{
	if (ParseState *st = state_of(ctx)) st->doctype = true;
	xmlStopParser(static_cast<xmlParserCtxtPtr>(ctx));
}

// Per-context structured error handler: nothing reaches stderr or a global handler.
void on_error(void *ctx, xmlErrorPtr e)
{
	ParseState *st = state_of(ctx);
	if (!st || !e || e->level < XML_ERR_ERROR) return;
	if (!st->error) {
		st->error = true;
		st->error_line = e->line;
	}
}

}  // namespace

Parsed parse_safe(std::string_view body)
{
	Parsed out;
	out.error_line = 1;
	if (body.empty() || body.size() > static_cast<size_t>(INT_MAX)) return out;
	std::unique_ptr<xmlParserCtxt, CtxtFree> ctxt(
			xmlCreateMemoryParserCtxt(body.data(), static_cast<int>(body.size())));
	if (!ctxt) throw std::bad_alloc();
	ParseState st;
	ctxt->_private = &st;
	xmlCtxtUseOptions(ctxt.get(),
			XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	// Whatever libxml2's process-wide defaults are (another module may have changed them).
	ctxt->replaceEntities = 0;
	ctxt->loadsubset = 0;
	ctxt->validate = 0;
	ctxt->pedantic = 0;
	ctxt->sax->internalSubset = on_internal_subset;
	ctxt->sax->externalSubset = nullptr;
	ctxt->sax->serror = on_error;
	ctxt->userData = ctxt.get();
	xmlParseDocument(ctxt.get());
	out.doc.reset(ctxt->myDoc);
	ctxt->myDoc = nullptr;
	if (st.doctype || (out.doc && (out.doc->intSubset || out.doc->extSubset))) {
		out.doctype = true;
		out.doc.reset();
		return out;
	}
	if (!out.doc || !ctxt->wellFormed || !ctxt->nsWellFormed || st.error) {
		out.error_line = st.error_line > 0 ? st.error_line : 1;
		out.doc.reset();
		return out;
	}
	out.ok = true;
	return out;
}

std::string prop(xmlNodePtr n, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(n, BAD_CAST name);
	std::string s = str_of(v);
	if (v) xmlFree(v);
	return s;
}

std::string content(xmlNodePtr n)
{
	xmlChar *v = xmlNodeGetContent(n);
	std::string s = imps::trim(str_of(v));
	if (v) xmlFree(v);
	return s;
}

std::string escape(std::string_view v)
{
	std::string o;
	o.reserve(v.size());
	for (char c : v) {
		switch (c) {
		case '&': o += "&amp;"; break;
		case '<': o += "&lt;"; break;
		case '>': o += "&gt;"; break;
		case '"': o += "&quot;"; break;
		default: o += c;
		}
	}
	return o;
}

}  // namespace imps::xml
