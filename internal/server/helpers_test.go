package server

import (
	"net/http"
	"net/http/httptest"
)

func mustReq(method, path string) *http.Request { return httptest.NewRequest(method, path, nil) }
