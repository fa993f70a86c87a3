-- KEMI routing of the test presence server: PUBLISH and SUBSCRIBE from the HSP only.
function ksr_request_route()
	if KSR.is_PUBLISH() or KSR.is_SUBSCRIBE() then
		if KSR.imps_presence.trusted() < 0 then
			KSR.sl.sl_send_reply(403, "Forbidden (presence requests only through the HSP)")
			return 1
		end
		local rc
		if KSR.is_PUBLISH() then
			rc = KSR.imps_presence.handle_publish()
			KSR.info("imps_presence.handle_publish returned " .. rc .. "\n")
		else
			if KSR.hdr.is_present("Route") > 0 then
				KSR.rr.loose_route()
			end
			rc = KSR.imps_presence.handle_subscribe()
			KSR.info("imps_presence.handle_subscribe returned " .. rc .. "\n")
		end
		return 1
	end
	KSR.sl.sl_send_reply(405, "Method Not Allowed")
	return 1
end
