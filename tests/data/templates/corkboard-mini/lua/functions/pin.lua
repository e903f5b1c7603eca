--- Pin a note (test fixture)
function call(request)
  return { ok = true }
end
