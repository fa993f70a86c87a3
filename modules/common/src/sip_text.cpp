#include "imps/sip_text.hpp"

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace imps {

std::string trim(const std::string &s)
{
	size_t b = 0, e = s.size();
	while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
	while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
	return s.substr(b, e - b);
}

std::string lower(std::string s)
{
	for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	return s;
}

std::string event_id(const std::string &event)
{
	size_t pos = 0;
	while ((pos = event.find(';', pos)) != std::string::npos) {
		++pos;
		size_t eq = event.find('=', pos);
		size_t end = event.find(';', pos);
		std::string name = lower(trim(event.substr(pos, (eq == std::string::npos || eq > end ? end : eq) - pos)));
		if (name == "id" && eq != std::string::npos && (end == std::string::npos || eq < end)) {
			std::string v = trim(event.substr(eq + 1, end == std::string::npos ? std::string::npos : end - eq - 1));
			bool ok = !v.empty() && v.size() <= 64;
			for (char c : v)
				if (!(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-.!%*_+`'~", c))) ok = false;
			return ok ? v : std::string();
		}
	}
	return {};
}

bool accepts(const std::vector<std::string> &ranges, const std::string &type)
{
	std::string major = type.substr(0, type.find('/')) + "/*";
	for (const auto &r : ranges) {
		std::string t = lower(trim(r.substr(0, r.find(';'))));
		if (t != type && t != major && t != "*/*") continue;
		// "q=0" (RFC 3261 20.1, RFC 7231 5.3.1): explicitly not acceptable
		std::string params;
		if (r.find(';') != std::string::npos)
			for (char c : lower(r.substr(r.find(';'))))
				if (!std::isspace(static_cast<unsigned char>(c))) params += c;
		size_t q = params.find(";q=");
		if (q != std::string::npos) {
			std::string v = params.substr(q + 3, params.find(';', q + 1) - q - 3);
			if (!v.empty() && std::strtod(v.c_str(), nullptr) <= 0.0) continue;
		}
		return true;
	}
	return false;
}

}  // namespace imps
