"""`make demo`: the dispatcher's morning (issue 14). On the day at 07:00, after the morning re-plan,
the regions' dispatchers act on their plans through the HTTP API, as the console does:

- Skåne: the doctor with the most visits calls in sick (`DELETE …/clinicians/{id}/shifts/{date}`).
  The day is re-planned without them; what fits nowhere is listed as unkept with its reason and its
  patients are texted the nearest free windows (the next day's roster is in, so there are some);
  one of them takes the first offered window (`POST /bookings/{id}/reschedule`).
- Stockholm: a move a clinician cannot take is refused (a visit to someone without its skill), then
  a visit is moved from the busiest route to another clinician at a given position
  (`POST …/plans/{date}/moves`); both clinicians are told their route changed, and the patients
  whose live ETA moved more than the margin from what they had heard are texted.
- Västra Götaland: a visit is pinned to another doctor (a move with `pin`), then Re-plan
  (`POST …/plans/{date}/optimize`); the pin holds through it and the day's re-plans.

Each action is recorded for the report (`dispatcher_actions` in the summary: what was done, the
affected clinicians' routes before and after, the SMS it caused, the unkept visits, its checks);
its checks join the day's. What the checks compare with comes from the API's answers and the
outbox; the patients' last-heard ETAs are read from the live-route items (as dispatch keeps them).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

SICK_REGION, MOVE_REGION, PIN_REGION = "skane", "stockholm", "vastra-gotaland"
ETA_SMS_KINDS = ("eta_changed", "eta_late")


def _utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def sequences(plan: dict | None) -> dict[str, list[str]]:
    """clinician id -> booking ids of their route, in order."""
    return {r["clinician_id"]: [s["booking_id"] for s in r["stops"]] for r in (plan or {}).get("routes", [])}


def where(plan: dict | None, booking_id: str) -> tuple[str | None, int | None, dict | None]:
    """(clinician, position, stop) of a visit in a plan, or Nones."""
    for r in (plan or {}).get("routes", []):
        for i, s in enumerate(r["stops"]):
            if s["booking_id"] == booking_id:
                return r["clinician_id"], i, s
    return None, None, None


def report_stops(plan: dict | None, clinician_id: str) -> list[dict]:
    """A clinician's stops in a plan as the report draws them."""
    route: dict = next((r for r in (plan or {}).get("routes", []) if r["clinician_id"] == clinician_id), {"stops": []})
    return [{"booking_id": s["booking_id"], "visit_type": s.get("visit_type"), "window_start": s.get("window_start"),
             "window_end": s.get("window_end"), "eta_local": s.get("eta_local"), "pinned": bool(s.get("pinned")),
             "priority": s.get("priority"), "late": bool(s.get("late")),
             "lat": (s.get("address") or {}).get("lat"), "lon": (s.get("address") or {}).get("lon")}
            for s in route["stops"]]


class DispatcherMorning:
    """The three dispatchers' actions of the morning, their records and their checks."""

    def __init__(self, sim: Any):  # devstack.demo.DaySimulation (which imports this module)
        self.sim, self.c, self.day = sim, sim.c, sim.day
        self.actions: list[dict] = []
        self.unkept: dict[str, dict] = {}  # booking id -> the DELETE's unkept entry
        self.moved_off_day: set[str] = set()  # unkept visits rescheduled to another day
        self.pinned: dict | None = None  # {"booking_id", "clinician_id"}

    # ------------------------------------------------------------ helpers
    def run(self):
        for act in (self.sick_leave, self.move, self.pin):
            before = len(self.actions)
            try:
                act()
            finally:
                if len(self.actions) == before:
                    self.sim.check(f"dispatcher action {act.__name__} was carried out", False, "it stopped early")

    def _booking(self, booking_id: str) -> Any:  # devstack.demo.Booking or None
        return next((b for b in self.sim.bookings if b.id == booking_id), None)

    def _path(self, region: str) -> str:
        return f"/regions/{region}/plans/{self.day}"

    def _outbox_ids(self) -> set[str]:
        return {m["message_id"] for m in self.sim.outbox()}

    def _new_sms(self, seen: set[str]) -> list[dict]:
        return [m for m in self.sim.outbox() if m["message_id"] not in seen]

    def _check(self, action: dict, name: str, ok: bool, detail="") -> bool:
        ok = self.sim.check(name, ok, detail)
        action["checks"].append(self.sim.checks[-1])
        return ok

    def _action(self, kind: str, region: str, title: str) -> dict:
        action = {"id": kind, "region": region, "region_name": self.sim.config.region(region).name,
                  "title": title, "at": self.c.log.sim.isoformat() if self.c.log.sim else None,
                  "done": [], "routes": [], "highlight": [], "sms": [], "unkept": [], "unassigned": [], "checks": []}
        self.actions.append(action)
        return action

    def _routes(self, action: dict, before: dict | None, after: dict | None, clinicians: list[str]):
        for cid in clinicians:
            c = self.sim.clinicians.get(cid)
            action["routes"].append({"clinician_id": cid, "role": c.role if c else None,
                                     "start": c.location if c else None,
                                     "before": report_stops(before, cid), "after": report_stops(after, cid)})

    def _told(self, region: str) -> dict:
        """booking id -> {"eta", "late"}: the ETA each patient of the day last heard (dispatch's
        live-route items keep it; the first ETA computed counts as heard, the app shows it)."""
        from homevisits.persistence import live as store
        told: dict = {}
        for item in store.routes_of_day(f"{region}#{self.day.isoformat()}").values():
            told.update(item.told or {})
        return told

    def _told_by_sms(self, action: dict, sms: list[dict]):
        action["sms"] += [{"recipient": m["recipient"], "kind": m["kind"], "text": m["text"], "at": m["at"],
                           "booking_id": m.get("booking_id")} for m in sms]

    def _route_changed_told(self, sms: list[dict], clinicians, after_version: int) -> list[str]:
        """The clinicians among `clinicians` who got no 'your route changed' for a version after
        the one before the action (at most `after_version`)."""
        import re
        missing = []
        for cid in clinicians:
            versions = [int(v) for m in sms if m["recipient"] == f"clinician:{cid}" and m["kind"] == "route_changed"
                        for v in re.findall(r"plan v(\d+)", m["text"])]
            if not any(v <= after_version for v in versions):
                missing.append(cid)
        return missing

    # ------------------------------------------------------------ Skåne: sick leave
    def sick_leave(self, region: str = SICK_REGION):
        sim, c = self.sim, self.c
        token = sim.dispatcher(region)
        before = sim.get_plan(region)
        if not before or not before.get("routes"):
            return
        doctors = [r for r in before["routes"] if r["role"] == "doctor"] or before["routes"]
        sick = max(doctors, key=lambda r: (len(r["stops"]), r["clinician_id"]))["clinician_id"]
        theirs = [s["booking_id"] for s in next(r for r in before["routes"] if r["clinician_id"] == sick)["stops"]]
        action = self._action("sick", region, f"{sick} calls in sick: taken off the day")
        # The next day's roster is in (the unkept patients are offered windows from it).
        nxt = self.day + timedelta(days=1)
        for cl in [x for x in sim.clinicians.values() if x.region == region and x.id != sick]:
            c.call("PUT", f"/regions/{region}/clinicians/{cl.id}/shifts/{nxt}", token,
                   {"role": cl.role, "start": cl.start, "end": cl.end, "start_location": cl.location})
        action["done"].append(f"the next day's shifts are in ({nxt}): the unkept patients can be offered windows")
        seen = self._outbox_ids()
        r = c.call("DELETE", f"/regions/{region}/clinicians/{sick}/shifts/{self.day}", token)
        if r.status_code != 200:
            self._check(action, f"sick leave: DELETE {sick}'s shift answered 200", False, f"{r.status_code} {r.text[:160]}")
            return
        answer = r.json()
        sim.clinicians[sick].off = True
        self.unkept = {u["booking_id"]: u for u in answer.get("unkept") or []}
        action["done"].append(f"DELETE /regions/{region}/clinicians/{sick}/shifts/{self.day} → 200: "
                              f"{len(self.unkept)} of their {len(theirs)} visits cannot be kept, the others go "
                              f"where they fit (capacity ledger v{answer.get('version')})")
        c.drain()
        after = sim.get_plan(region) or {}
        action["done"].append(f"the booking stream re-planned the day: plan v{before['version']} → v{after.get('version')}")
        routed = {b: cid for cid, seq in sequences(after).items() for b in seq}
        reasons = {u["booking_id"]: u.get("reason") for u in after.get("unassigned", [])}
        changed = sorted(cid for cid in set(sequences(before)) | set(sequences(after))
                         if sequences(before).get(cid, []) != sequences(after).get(cid, []))
        self._routes(action, before, after, [sick, *[x for x in changed if x != sick]])
        action["highlight"] = theirs
        action["unassigned"] = after.get("unassigned", [])
        self._check(action, f"sick leave: the day was re-planned without {sick} (plan v{before['version']} → "
                            f"v{after.get('version')}); each of their {len(theirs)} visits is on another route or unkept",
                    (after.get("version") or 0) > before["version"] and sick not in sequences(after)
                    and all(b in routed or b in self.unkept for b in theirs),
                    {b: routed.get(b) or ("unkept" if b in self.unkept else "lost") for b in theirs})
        self._check(action, "sick leave: the unkept visits are listed in the plan with their reason "
                            "(clinician_unavailable)",
                    bool(self.unkept) and all(reasons.get(b) == "clinician_unavailable" for b in self.unkept),
                    {b: reasons.get(b) for b in self.unkept} or "nothing unkept")
        # nothing silently dropped: every open booking of the day is somewhere, with a reason
        dropped = []
        for b in [x for x in sim.bookings if x.region == region and x.id]:
            got = c.call("GET", f"/bookings/{b.id}", sim.patient_token(b))
            if got.status_code == 200 and got.json().get("status") in ("confirmed", "en_route", "arrived") \
                    and b.id not in routed and not reasons.get(b.id) and b.id not in self.unkept:
                dropped.append(b.id)
        self._check(action, "sick leave: nothing silently dropped (every confirmed booking of the day is on a "
                            "route, or listed unkept or unassigned with a reason)", not dropped, dropped)
        # the patients: an SMS offering the windows the API lists for them
        sms = self._new_sms(seen)
        bad = {}
        for bid, u in sorted(self.unkept.items(), key=lambda kv: kv[1].get("window_start") or ""):
            b = self._booking(bid)
            shown = c.call("GET", f"/bookings/{bid}", sim.patient_token(b)).json().get("unkept") if b else None
            offered = (shown or {}).get("offered") or []
            text = next((m["text"] for m in sms if m["kind"] == "visit_unkept" and m.get("booking_id") == bid), "")
            action["unkept"].append({**u, "reason": (shown or {}).get("reason"), "offered": offered, "sms": text})
            if not offered or not text or not all(o["date"] in text and o["window_start"] in text for o in offered):
                bad[bid] = {"offered": len(offered), "sms": text[:80]}
        self._check(action, "sick leave: each unkept visit's patient got an SMS offering the nearest free windows "
                            "(the ones GET /bookings/{id} shows)", bool(self.unkept) and not bad, bad)
        missing = self._route_changed_told(sms, changed, after.get("version") or 0)
        self._check(action, f"sick leave: the clinicians whose route changed were told ({', '.join(changed)})",
                    bool(changed) and not missing, missing)
        self._reschedule_one(action, region, seen)

    def _reschedule_one(self, action: dict, region: str, seen: set[str]):
        """The first unkept patient (by window) takes the first window offered to them."""
        entry = next((u for u in action["unkept"] if u["offered"]), None)
        if entry is None:
            return
        b = self._booking(entry["booking_id"])
        o = entry["offered"][0]
        r = self.c.call("POST", f"/bookings/{entry['booking_id']}/reschedule", self.sim.patient_token(b),
                        {"date": o["date"], "window_start": o["window_start"]})
        body = r.json() if r.status_code == 200 else {}
        entry["rescheduled_to"] = f"{o['date']} {o['window_start']}–{o['window_end']}"
        action["done"].append(f"the patient of the {entry['window_start']} visit takes the first window offered: "
                              f"POST /bookings/{{id}}/reschedule {{date: {o['date']}, window_start: {o['window_start']}}}"
                              f" → {r.status_code}")
        same_day = o["date"] == self.day.isoformat()
        if b is not None and r.status_code == 200:
            b.window_start = o["window_start"]
            if not same_day:
                self.moved_off_day.add(b.id)
        self.c.drain()
        routed_now = where(self.sim.get_plan(region), entry["booking_id"])[0] if same_day else None
        self._check(action, "sick leave: an unkept patient moved the visit to the first window offered; the mark "
                            "is cleared" + (" and the re-planned day has it on a route" if same_day else ""),
                    r.status_code == 200 and "unkept" not in body and body.get("date") == o["date"]
                    and body.get("window_start") == o["window_start"] and (routed_now is not None or not same_day),
                    {"status": r.status_code, "date": body.get("date"), "window": body.get("window_start"),
                     "routed": routed_now})
        self._told_by_sms(action, self._new_sms(seen))

    # ------------------------------------------------------------ Stockholm: a move
    def move(self, region: str = MOVE_REGION):
        sim, c = self.sim, self.c
        token = sim.dispatcher(region)
        plan = sim.get_plan(region)
        if not plan or not plan.get("routes"):
            return
        action = self._action("move", region, "A visit moved to another clinician and position")
        busiest = max(plan["routes"], key=lambda r: (len(r["stops"]), r["clinician_id"]))
        others = sorted((x for x in sim.clinicians.values() if x.region == region and not x.off
                         and x.id != busiest["clinician_id"]),
                        key=lambda x: (len(sequences(plan).get(x.id, [])), x.id))
        # A move the plan cannot take first: a visit to a clinician without its skill.
        stop0 = next((s for s in busiest["stops"] if s.get("status") == "confirmed"), None)
        wrong = next((x for x in others if x.role != busiest["role"]), None)
        if stop0 is not None and wrong is not None:
            r = c.call("POST", f"{self._path(region)}/moves", token,
                       {"booking_id": stop0["booking_id"], "clinician_id": wrong.id, "plan_version": plan["version"]},
                       expect=(409,))
            code = (r.json().get("error") or {}).get("code") if r.content else None
            unchanged = (sim.get_plan(region) or {}).get("version") == plan["version"]
            action["done"].append(f"POST {self._path(region)}/moves (the {stop0['window_start']} {stop0['visit_type']} "
                                  f"visit to {wrong.id}, a {wrong.role}) → {r.status_code} {code}")
            self._check(action, "move: a visit moved to a clinician without its skill is refused (409 skill_mismatch) "
                                "and the plan stays as it was", r.status_code == 409 and code == "skill_mismatch"
                        and unchanged, f"{r.status_code} {code}, plan unchanged: {unchanged}")
        told = self._told(region)
        seen = self._outbox_ids()
        moved, chosen, refused = None, None, []
        for s in [x for x in busiest["stops"] if x.get("status") == "confirmed" and not x.get("locked")]:
            for target in [x for x in others if x.role == busiest["role"]]:
                seq = [st for st in next((r["stops"] for r in plan["routes"] if r["clinician_id"] == target.id), [])]
                position = sum(1 for st in seq if st["window_start"] <= s["window_start"])
                body = {"booking_id": s["booking_id"], "clinician_id": target.id, "position": position,
                        "plan_version": plan["version"]}
                r = c.call("POST", f"{self._path(region)}/moves", token, body, expect=(200, 409))
                if r.status_code == 200:
                    moved, chosen = r.json(), (s, target.id, position)
                    break
                refused.append((r.json().get("error") or {}).get("code"))
                if len(refused) >= 12:
                    break
            if moved or len(refused) >= 12:
                break
        if moved is None or chosen is None:
            self._check(action, "move: a visit of the busiest route could be moved to another clinician", False, refused)
            return
        s, target, position = chosen
        bid, src = s["booking_id"], busiest["clinician_id"]
        action["highlight"] = [bid]
        action["done"].append(f"POST {self._path(region)}/moves {{booking_id: …{bid[-6:]}, clinician_id: {target}, "
                              f"position: {position}, plan_version: {plan['version']}}} → 200, plan v{moved['version']}"
                              + (f" (moves refused first: {', '.join(x or '?' for x in refused)})" if refused else ""))
        _, _, new_stop = where(moved, bid)
        action["done"].append(f"the {s['window_start']}–{s['window_end']} visit's ETA: {s.get('eta_local')} with {src}, "
                              f"{(new_stop or {}).get('eta_local')} with {target}")
        c.drain()
        sms = self._new_sms(seen)
        self._told_by_sms(action, sms)
        self._routes(action, plan, moved, [src, target])
        clinician, pos, _ = where(moved, bid)
        missing = self._route_changed_told(sms, [src, target], moved["version"])
        self._check(action, f"move: the visit is with {target} at position {position} in plan v{moved['version']} "
                            f"(was v{plan['version']}); {src} and {target} were told their route changed",
                    moved["version"] == plan["version"] + 1 and (clinician, pos) == (target, position) and not missing,
                    {"at": (clinician, pos), "version": moved["version"], "not told": missing})
        # the patients: texted exactly when their live ETA moved past the margin from what they had heard
        from homevisits.settings import eta_notify_margin_minutes
        margin = eta_notify_margin_minutes()
        expected, got, wrong_text, elsewhere = set(), set(), {}, set()
        for r in moved["routes"]:
            for st in r["stops"]:
                heard = told.get(st["booking_id"])
                if heard is None or st.get("status") != "confirmed":
                    continue
                if abs((_utc(st["eta"]) - _utc(heard["eta"])).total_seconds()) > margin * 60 \
                        or (st.get("late") and not heard.get("late")):
                    expected.add(st["booking_id"])
                texts = [m["text"] for m in sms if m["kind"] in ETA_SMS_KINDS and m.get("booking_id") == st["booking_id"]]
                if texts:
                    got.add(st["booking_id"])
                    if r["clinician_id"] not in (src, target):
                        elsewhere.add(st["booking_id"])
                    if not all(st["eta_local"] in t for t in texts):
                        wrong_text[st["booking_id"]] = (st["eta_local"], texts[0][:80])
        # what the move did to the routes it did not touch (their order is the same; their times?)
        etas_before = {st["booking_id"]: st["eta"] for r in plan["routes"] for st in r["stops"]}
        shifted = {}
        for r in moved["routes"]:
            if r["clinician_id"] in (src, target):
                continue
            d = [abs((_utc(st["eta"]) - _utc(etas_before[st["booking_id"]])).total_seconds()) / 60
                 for st in r["stops"] if st["booking_id"] in etas_before]
            if any(x >= 1 for x in d):
                shifted[r["clinician_id"]] = (sum(1 for x in d if x >= 1), round(max(d)))
        action["untouched_routes_retimed"] = shifted
        self._check(action, "move: the routes the move did not touch kept their times",
                    not shifted, {cid: f"{n} stops, up to {m} min" for cid, (n, m) in sorted(shifted.items())})
        action["done"].append(f"patients whose live ETA moved more than {margin} min from what they had heard: "
                              f"{len(expected)}, texted: {len(got)}; of them on routes the move did not touch: "
                              f"{len(elsewhere)}")
        self._check(action, f"move: the patients whose live ETA moved more than {margin} min were texted the ETA "
                            "the plan shows, and no one else",
                    expected == got and not wrong_text,
                    {"expected": sorted(expected), "texted": sorted(got), "wrong text": wrong_text})

    # ------------------------------------------------------------ Västra Götaland: a pin
    def pin(self, region: str = PIN_REGION):
        sim, c = self.sim, self.c
        token = sim.dispatcher(region)
        plan = sim.get_plan(region)
        if not plan or not plan.get("routes"):
            return
        action = self._action("pin", region, "A visit pinned to another doctor, then re-planned")
        doctors = sorted((x for x in sim.clinicians.values() if x.region == region and x.role == "doctor"
                          and not x.off), key=lambda x: x.id)
        pinned, chosen = None, None
        seen = self._outbox_ids()
        # a late visit of an early route, pinned to a later doctor: the optimizer would rather not
        stops = sorted(((r["clinician_id"], s) for r in plan["routes"] if r["role"] == "doctor" for s in r["stops"]
                        if s.get("status") == "confirmed"), key=lambda cs: cs[1]["window_start"], reverse=True)
        for src, s in stops:
            for target in [d for d in doctors if d.id != src]:
                r = c.call("POST", f"{self._path(region)}/moves", token,
                           {"booking_id": s["booking_id"], "clinician_id": target.id, "pin": True,
                            "plan_version": plan["version"]}, expect=(200, 409))
                if r.status_code == 200:
                    pinned, chosen = r.json(), (src, s, target.id)
                    break
            if pinned:
                break
        if pinned is None or chosen is None:
            self._check(action, "pin: a doctor's visit could be pinned to another doctor", False)
            return
        src, s, target = chosen
        bid = s["booking_id"]
        self.pinned = {"booking_id": bid, "clinician_id": target}
        action["highlight"] = [bid]
        action["done"].append(f"POST {self._path(region)}/moves {{booking_id: …{bid[-6:]}, clinician_id: {target}, "
                              f"pin: true, plan_version: {plan['version']}}} → 200, plan v{pinned['version']}: the "
                              f"{s['window_start']}–{s['window_end']} visit leaves {src} for {target}, pinned")
        r = c.call("POST", f"{self._path(region)}/optimize", token, {"time_limit_s": 1})
        replanned = r.json() if r.status_code == 200 else {}
        if replanned:
            sim.plan_versions[region].append(replanned.get("version"))
        action["done"].append(f"POST {self._path(region)}/optimize {{time_limit_s: 1}} → {r.status_code}, "
                              f"plan v{replanned.get('version')}")
        c.drain()
        sms = self._new_sms(seen)
        self._told_by_sms(action, sms)
        self._routes(action, plan, replanned, [src, target])
        clinician, _, stop = where(replanned, bid)
        missing = self._route_changed_told(sms, [src, target], replanned.get("version") or pinned["version"])
        self._check(action, f"pin: {src} and {target} were told their route changed", not missing, missing)
        self._check(action, f"pin: the visit pinned to {target} stayed with {target} through the re-plan "
                            f"(v{pinned['version']} → v{replanned.get('version')}), marked pinned",
                    (replanned.get("version") or 0) > pinned["version"] and clinician == target
                    and bool((stop or {}).get("pinned")) and self.pinned in replanned.get("pins", []),
                    {"with": clinician, "pins": replanned.get("pins")})

    # ------------------------------------------------------------ at the end of the day
    def verify_day(self):
        """What became of the morning's actions by the evening."""
        if self.pinned is not None:
            cid, bid = self.pinned["clinician_id"], self.pinned["booking_id"]
            done_by = [c.id for c in self.sim.clinicians.values() if any(s["booking_id"] == bid for s in c.done)]
            action = next(a for a in self.actions if a["id"] == "pin")
            self._check(action, f"pin: the day's re-plans kept the pinned visit with {cid}, who made it",
                        done_by == [cid], done_by)
        for a in self.actions:
            for u in a["unkept"]:
                b = self._booking(u["booking_id"])
                u["final_status"] = b.status if b else None
