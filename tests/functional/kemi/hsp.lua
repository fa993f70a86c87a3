-- KEMI routing of the test HSP: registrar and reg event SUBSCRIBEs.
function ksr_request_route()
	if KSR.is_REGISTER() then
		KSR.registrar.save("location", 0)
		return 1
	end
	if KSR.is_SUBSCRIBE() then
		local rc = KSR.imps_reginfo.handle_subscribe()
		KSR.info("imps_reginfo.handle_subscribe returned " .. rc .. "\n")
		return 1
	end
	KSR.sl.sl_send_reply(404, "Not here")
	return 1
end
