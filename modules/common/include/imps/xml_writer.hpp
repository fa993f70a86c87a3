// RAII wrapper around libxml2's xmlTextWriter writing into memory. Attribute values and text
// are escaped by libxml2.
#pragma once

#include <libxml/xmlwriter.h>

#include <string>
#include <string_view>

namespace imps {

class XmlWriter {
public:
	XmlWriter();
	~XmlWriter();
	XmlWriter(const XmlWriter &) = delete;
	XmlWriter &operator=(const XmlWriter &) = delete;

	void start(std::string_view name);  // element, may be prefixed ("gr:pub-gruu")
	void attr(std::string_view name, std::string_view value);
	void text(std::string_view value);
	void end();
	// Ends every open element and the document; returns the serialized bytes.
	std::string finish();

private:
	xmlBufferPtr buf_ = nullptr;
	xmlTextWriterPtr w_ = nullptr;
};

}  // namespace imps
