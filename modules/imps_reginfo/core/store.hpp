// What the reg event package keeps besides its subscriptions (those are the shared layer's,
// imps/subs.hpp): per-binding metadata that usrloc does not keep, stored under the AoR's
// hash tag so that a binding change and the NOTIFYs it implies are one atomic step.
#pragma once

#include "imps/subs.hpp"

#include <map>
#include <optional>
#include <string>

namespace imps {
class Redis;
}

namespace imps::reginfo {

struct BindingMeta {
	long long first_registered = 0;
	long long expires_at = 0;  // last known expiry (to tell refreshed from shortened)
	long long first_cseq = 0;  // CSeq of the REGISTER that created the binding (temp-gruu)
	std::string display_name;
	std::string params;  // raw Contact header parameters of the last REGISTER
};

// The binding's metadata before the change, every binding's after it (only when a watcher
// exists), and the reg subscriptions whose NOTIFY goes now (numbers handed out; the others
// have one outstanding and get the newest state after its response).
struct BindingChangeResult {
	std::optional<BindingMeta> previous;
	std::map<std::string, BindingMeta> all;
	subs::Batch batch;
};

class BindingStore {
public:
	explicit BindingStore(subs::Store &subs) : subs_(subs) {}

	// Records a change of one binding (upsert or delete). meta.display_name/params are kept
	// from before when keep_meta is true. The AoR's metadata expires after ttl seconds (0:
	// never, a permanent binding exists). change_ms: when usrloc made the change (a
	// subscription made after it is left out: its first NOTIFY has the change); 0: now.
	BindingChangeResult binding_changed(const std::string &aor, const std::string &cid,
			bool removed, const BindingMeta &meta, bool keep_meta, long long ttl, long long now_ms,
			long long change_ms = 0);
	std::map<std::string, BindingMeta> bindings(const std::string &aor);

private:
	subs::Store &subs_;
};

}  // namespace imps::reginfo
