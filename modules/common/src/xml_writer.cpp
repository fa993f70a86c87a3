#include "imps/xml_writer.hpp"

#include <stdexcept>

namespace imps {
namespace {

std::string z(std::string_view v) { return std::string(v); }

void check(int rc, const char *what)
{
	if (rc < 0) throw std::runtime_error(std::string("libxml2 writer: ") + what + " failed");
}

}  // namespace

XmlWriter::XmlWriter()
{
	buf_ = xmlBufferCreate();
	if (!buf_) throw std::bad_alloc();
	w_ = xmlNewTextWriterMemory(buf_, 0);
	if (!w_) {
		xmlBufferFree(buf_);
		throw std::bad_alloc();
	}
	check(xmlTextWriterStartDocument(w_, "1.0", "UTF-8", nullptr), "start document");
}

XmlWriter::~XmlWriter()
{
	if (w_) xmlFreeTextWriter(w_);
	if (buf_) xmlBufferFree(buf_);
}

void XmlWriter::start(std::string_view name)
{
	check(xmlTextWriterStartElement(w_, BAD_CAST z(name).c_str()), "start element");
}

void XmlWriter::attr(std::string_view name, std::string_view value)
{
	check(xmlTextWriterWriteAttribute(w_, BAD_CAST z(name).c_str(), BAD_CAST z(value).c_str()),
			"attribute");
}

void XmlWriter::text(std::string_view value)
{
	check(xmlTextWriterWriteString(w_, BAD_CAST z(value).c_str()), "text");
}

void XmlWriter::end() { check(xmlTextWriterEndElement(w_), "end element"); }

std::string XmlWriter::finish()
{
	check(xmlTextWriterEndDocument(w_), "end document");
	xmlFreeTextWriter(w_);  // flushes into buf_
	w_ = nullptr;
	return std::string(reinterpret_cast<const char *>(xmlBufferContent(buf_)),
			static_cast<size_t>(xmlBufferLength(buf_)));
}

}  // namespace imps
