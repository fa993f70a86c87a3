-- KEMI routing of tests/functional/aaa/aaa-async-test.cfg: REGISTER authenticated with
-- KSR.imps_aaa.authenticate_async() without t_check_trans() first; the callback answers with
-- the result code in the reason phrase.
function ksr_request_route()
	if KSR.is_REGISTER() then
		if KSR.imps_aaa.authenticate_async("a.example", "ksr_aaa_done") ~= 0 then
			ksr_aaa_done()  -- known at once (no credentials...): answered here
		end
		return 1
	end
	KSR.sl.sl_send_reply(405, "Method Not Allowed")
	return 1
end

function ksr_aaa_done()
	local rc = KSR.pv.get("$xavp(imps_aaa=>rc)")
	if rc == -1 or rc == -4 then
		KSR.hdr.append_to_reply(KSR.pv.get("$avp(digest_challenge)"))
		KSR.sl.send_reply(401, "Unauthorized")
		return 1
	end
	KSR.sl.send_reply(500, "AAA result " .. tostring(rc))
	return 1
end
