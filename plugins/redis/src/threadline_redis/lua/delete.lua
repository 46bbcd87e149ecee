-- Delete a session. KEYS[1] its hash. ARGV: base, id. Returns its message count, or -1 if
-- there is no such session.
return delete_session(ARGV[1], ARGV[2]) or -1
