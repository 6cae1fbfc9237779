// Copied into FerretDB's internal/handler/common by deploy/local/stack.py (update_by_ids).

package common

import (
	"context"
	"errors"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// maxUpdatesByIDs is the most statements read at once: the SQLite backend narrows `_id` `$in`
// of up to 1,000 values by its index.
const maxUpdatesByIDs = 1000

// UpdateByIDs applies the statements of one update command with one read of all their documents
// and one transaction for the modified ones, instead of a read and a transaction per statement.
//
// It applies only to statements that each update at most one document named by a distinct `_id`
// (a string or an ObjectID); other filter fields are matched in Go as usual, and an upsert
// inserts what it would have inserted alone. Distinct ids make the order of the statements
// irrelevant. For anything else, and whenever a statement fails to apply, it returns ok false
// having written nothing, and the caller applies the statements one by one as before (which
// reports the error the usual way). `upserted` lists the inserted ids by statement index.
func UpdateByIDs(ctx context.Context, c backends.Collection, updates []Update) (matched, modified int32, upserted *types.Array, ok bool, err error) {
	upserted = types.MakeArray(0)
	if len(updates) < 2 || len(updates) > maxUpdatesByIDs {
		return 0, 0, nil, false, nil
	}

	ids := types.MakeArray(len(updates))
	keys := make([]string, len(updates))
	seen := make(map[string]struct{}, len(updates))

	for i, u := range updates {
		if u.Multi || u.Filter == nil || u.Filter.Len() == 0 || !u.Filter.Has("_id") {
			return 0, 0, nil, false, nil
		}

		id, _ := u.Filter.Get("_id")
		switch id.(type) {
		case string, types.ObjectID:
		default:
			return 0, 0, nil, false, nil
		}

		key, keyErr := sjson.MarshalSingleValue(id)
		if keyErr != nil {
			return 0, 0, nil, false, nil
		}

		if _, dup := seen[string(key)]; dup {
			return 0, 0, nil, false, nil
		}

		seen[string(key)] = struct{}{}
		keys[i] = string(key)
		ids.Append(id)
	}

	filter := must.NotFail(types.NewDocument("_id", must.NotFail(types.NewDocument("$in", ids))))

	res, err := c.Query(ctx, &backends.QueryParams{Filter: filter})
	if err != nil {
		return 0, 0, nil, false, lazyerrors.Error(err)
	}

	docs := make(map[string]*types.Document, len(updates))

	for {
		_, doc, nextErr := res.Iter.Next()
		if errors.Is(nextErr, iterator.ErrIteratorDone) {
			break
		}

		if nextErr != nil {
			res.Iter.Close()
			return 0, 0, nil, false, lazyerrors.Error(nextErr)
		}

		id, _ := doc.Get("_id")
		if key, keyErr := sjson.MarshalSingleValue(id); keyErr == nil {
			docs[string(key)] = doc
		}
	}

	// Closed before writing: an open read keeps SQLite's WAL checkpoint from finishing.
	res.Iter.Close()

	var changed, inserted []*types.Document

	for i, u := range updates {
		doc := docs[keys[i]]
		upsert := doc == nil

		switch {
		case upsert && !u.Upsert:
			continue
		case upsert:
			doc = must.NotFail(types.NewDocument())
			if filterErr := processFilterEqualityCondition(doc, u.Filter); filterErr != nil {
				return 0, 0, nil, false, nil
			}
		default:
			match, matchErr := FilterDocument(doc, u.Filter)
			if matchErr != nil {
				return 0, 0, nil, false, nil
			}

			if !match {
				continue
			}
		}

		// An upsert counts as matched, as in UpdateDocument's callers: MongoDB's n includes it.
		matched++

		var m bool
		var applyErr error

		if u.HasUpdateOperators {
			m, applyErr = processUpdateOperator("update", doc, u.Update, upsert)
		} else {
			m, applyErr = processReplacementDoc("update", doc, u.Update)
		}

		if applyErr != nil {
			return 0, 0, nil, false, nil
		}

		if !upsert && !m {
			continue
		}

		if !doc.Has("_id") {
			doc.Set("_id", must.NotFail(u.Filter.Get("_id")))
		}

		if validateErr := doc.ValidateData(); validateErr != nil {
			return 0, 0, nil, false, nil
		}

		if upsert {
			inserted = append(inserted, doc)
			upserted.Append(must.NotFail(types.NewDocument("index", int32(i), "_id", must.NotFail(doc.Get("_id")))))

			continue
		}

		changed = append(changed, doc)
		modified++
	}

	if len(inserted) > 0 {
		if _, err = c.InsertAll(ctx, &backends.InsertAllParams{Docs: inserted}); err != nil {
			return 0, 0, nil, true, lazyerrors.Error(err)
		}
	}

	if err = writeModified(ctx, c, changed); err != nil {
		return 0, 0, nil, true, err
	}

	return matched, modified, upserted, true, nil
}
