package server

import (
	"context"
	"net/http"
	"time"

	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/reason"
)

// ListStore keeps the guard's lists.
type ListStore interface {
	Entries(ctx context.Context, list string) ([]pipeline.ListEntry, error)
	Add(ctx context.Context, list, kind, value, note, by string, now time.Time) (bool, error)
	Remove(ctx context.Context, list, kind, value, by string, now time.Time) (bool, error)
}

func (s *Server) lists() (ListStore, error) {
	if s.cfg.Lists == nil {
		return nil, reason.E("unavailable.lists")
	}
	return s.cfg.Lists, nil
}

func (s *Server) getLists(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.lists()
	if err != nil {
		return err
	}
	es, err := ls.Entries(r.Context(), r.URL.Query().Get("list"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": es})
	return nil
}

func (s *Server) putListEntry(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.lists()
	if err != nil {
		return err
	}
	var req struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
		Note  string `json:"note"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	added, err := ls.Add(r.Context(), r.PathValue("list"), req.Kind, req.Value, req.Note, s.actor(r).Principal, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"list": r.PathValue("list"), "kind": req.Kind, "value": req.Value, "added": added})
	return nil
}

func (s *Server) deleteListEntry(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.lists()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	removed, err := ls.Remove(r.Context(), r.PathValue("list"), q.Get("kind"), q.Get("value"), s.actor(r).Principal, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"list": r.PathValue("list"), "kind": q.Get("kind"), "value": q.Get("value"), "removed": removed})
	return nil
}
