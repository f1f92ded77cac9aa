/*
 * shared_ring.pml -- crash repair of the shared (many senders, many receivers) slot ring.
 *
 * Protocol: Sources/ShmMailbox/Ring/SharedRing.swift (tryWrite, commit, giveBack, tryRead,
 * consume, finishReceipt, holderIsDead, repair, suspectedOrphans, adopt, delivery, retract,
 * abandon), driven as Mailbox+Send.swift (a sender that finds the ring full notes the stall and
 * repairs), Mailbox+Receive.swift (a receiver that finds a claim at head notes the stall; an
 * empty receiver searches for orphans), Mailbox+Recovery.swift (noteStall, adoptOrphan) and
 * Mailbox+Receipts.swift (awaitReceipt) do. Bounded rings only (no sealing, see README).
 *
 * Abstraction (Models/README.md argues each point):
 *   - A slot's state word is (sequence, state, reference), packed into a short: W(s, st, r).
 *     Sequences are positions that do not wrap in the model (the Swift code keeps 40 bits).
 *   - Lease references are process ids that are never reused: each incarnation of a process
 *     gets a fresh id, and alive[id] is the liveness oracle (dead iff it has stopped). This is
 *     what (entry, tag) gives: an entry is re-leased only once its holder died, with a new tag.
 *   - A process can die right after any store (and right after handing a message to its caller);
 *     loads change nothing, so dying elsewhere leaves the same state.
 *   - A dead process is replaced by a new incarnation (new id) of the same process, which goes
 *     on with the work that is left.
 *   - The stall delay (repair only after a slot stayed the same for a while) is nondeterminism:
 *     a repairer may act on the word it observed at any later moment; every repair is a CAS on
 *     that exact word, preceded by the liveness check.
 *   - An atomic block is one instruction of the Swift code (a load, a store, a CAS), with local
 *     work and ghost updates. Where it holds more (a claimed slot's field stores in commit, a
 *     taken slot's loads and the body in consume, the suspect and liveness tests that guard a
 *     repair), the comment or the README says why nobody can tell the difference.
 *   - Retry loops block until a word they read changes (a retry that reads the same words does
 *     the same), or give up (a deadline): every scenario process can always finish.
 *   - Every `throw MailboxError.corrupted` is an assertion (CORRUPTED).
 *   - After every scenario process has finished or died, Final, a new process, sends C + 1
 *     probe messages and drains the ring alone (repairs are due at once: everyone else is dead
 *     or done). It must succeed within a bound (no-wedge); then no message may be lost.
 *
 * Parameters: C slots, NS sender processes sending K messages each, NR receiver processes,
 * MAXD deaths in all, DIERS who may die (1 senders, 2 receivers, 3 both). -DRECEIPTS: sender 0
 * sends synchronous (receipt) messages.
 * -DFIX_HEAD_HELP, -DFIX_HEAD_LAPS, -DFIX_DELIVERY_RACE: proposed fixes (README, Findings).
 * -DMUTANT_NO_LIVENESS, -DMUTANT_NO_MARK, -DMUTANT_REPAIR_STORE: deliberately broken repairs the
 * checks must catch. -DMUTANT_LATE_INTENT (a sender's intent stored after its claim) and
 * -DMUTANT_NO_RECHECK (a receiver trusts a kind it read after the slot word without checking the
 * word again): broken claims and takes of the cursor protocol, which the checks must catch too.
 */

#ifndef C
#define C 2
#endif
#ifndef NS
#define NS 2
#endif
#ifndef NR
#define NR 2
#endif
#ifndef K
#define K 1
#endif
#ifndef MAXD
#define MAXD 1
#endif
#ifndef DIERS
#define DIERS 3                      /* who may die: 1 senders, 2 receivers, 3 both */
#endif
#define NIDS (NS + NR + MAXD + 2)   /* process ids 1..: every incarnation and Final */
#define PROBES (C + 1)
#define NMSG (NS * K + PROBES + 1)   /* message ids 1..NMSG-1: sender sp's k-th is sp*K + k,
                                       then Final's probes */
#define MSGPROC(id) ((id) > NS * K -> NS : ((id) - 1) / K)

#define CORRUPTED(c) assert(!(c))

/* slot states */
#define EMPTY 0
#define CLAIMED 1
#define FULL 2
#define TAKEN 3
#define W(s, st, r) ((s) * 64 + (st) * 16 + (r))
#define SEQ(w) ((w) / 64)
#define ST(w) (((w) / 16) % 4)
#define REF(w) ((w) % 16)

/* slot kinds (SegmentLayout.kind*) */
#define KMSG 1
#define KDELIVERED 4
#define KRECEIPT 5
#define KABANDONED 6

/* ---- shared memory ------------------------------------------------------------------------ */
short slotw[C];        /* state word */
byte kind[C];          /* kind (without the redelivered flag) */
bit rflag[C];          /* the redelivered flag of kind */
byte pay[C];           /* payload: the message id */
byte snd[C];           /* sender identity (process id) */
byte takenBy[C];       /* receipt: the receiver that took it */
byte tail, head;
byte intent[NIDS];     /* lease intent: position + 1 being taken (stored before the head CAS) */
byte sintent[NIDS];    /* lease sender intent: position + 1 being claimed (before the tail CAS) */
bit isRecv[NIDS];      /* receiverLeases bitmap */
bit alive[NIDS];       /* liveness oracle */
byte nextId = NS + NR + 1;  /* ids of new incarnations (first ones: sender sp is sp + 1,
                               receiver rp is NS + rp + 1) */

/* ---- ghost state ---------------------------------------------------------------------------- */
bit committed[NMSG];   /* stored full by its sender */
bit retracted[NMSG];   /* taken back before anyone took it (timedOut) */
bit withdrawn[NMSG];   /* freed by its sender after its receiver died (receiverDied) */
byte dcount[NMSG];     /* handed to a caller (saturates at 2) */
bit released[NMSG];    /* finished: its receiver freed its slot, or marked it delivered (the
                          receive call that handed it out returned) */
byte lastTaken[NS + 1];  /* per sender process (NS: Final): the newest message taken first-time */
byte deaths;
byte finished;         /* scenario processes done */

/* ---- common steps ---------------------------------------------------------------------------- */

/* advance(cursor, from: x): CAS x -> x + 1 */
#define ADVANCE(cur, x) atomic { if :: cur == x -> cur = x + 1 :: else fi }

/* A line of the trail replay (spin -t): "S3: claims position 2" */
#define PR(...) printf("%c%d: ", tag, me); printf(__VA_ARGS__)

/* -DFIX_HEAD_HELP (an alternative fix): whoever frees a slot out of order (giveBack, retract, a
 * repaired claim) then moves head past every slot that already serves a later lap, as receivers
 * do, so that head is not left behind by an advance that found head elsewhere. */
#ifdef FIX_HEAD_HELP
#define HELP_HEAD \
    do \
    :: hh = head; \
       hw = slotw[hh % C]; \
       if \
       :: SEQ(hw) > hh -> ADVANCE(head, hh) \
       :: else -> break \
       fi \
    od; \
    atomic { hh = 0; hw = 0 }
#else
#define HELP_HEAD skip
#endif

/* Some live process's intent (sender intents: IX = sintent; receiver intents: IX = intent)
 * names position + 1 = v: LeaseTable.mayHoldLive. Ids are the lease entries (never reused). */
#define LI(IX, k, v) ((k) < NIDS && IX[k] == (v) && alive[k])
#define ANY_LIVE(IX, v) (LI(IX, 1, v) || LI(IX, 2, v) || LI(IX, 3, v) || LI(IX, 4, v) || LI(IX, 5, v) || \
                         LI(IX, 6, v) || LI(IX, 7, v) || LI(IX, 8, v) || LI(IX, 9, v) || LI(IX, 10, v) || \
                         LI(IX, 11, v) || LI(IX, 12, v) || LI(IX, 13, v) || LI(IX, 14, v) || LI(IX, 15, v))

/* The current incarnation may die here (right after a store). */
#define CRASH if :: atomic { mayDie && deaths < MAXD -> deaths++; PR("dies\n") }; goto died :: skip fi

/* holderIsDead(w, at: p) as one expression (for wait guards): slot index i */
/* empty(p) with tail past p: a claim never written (isUnwrittenClaim); full(p) with head past p:
 * a take never named in the slot (isUnnamedTake). Neither names its holder: dead when no live
 * process's intent names p. */
#ifndef MUTANT_NO_LIVENESS
#define HOLDER_DEAD(w, i) \
    (ST(w) == EMPTY -> (tail > SEQ(w) && !ANY_LIVE(sintent, SEQ(w) + 1)) : \
    (ST(w) == FULL -> (head > SEQ(w) && !ANY_LIVE(intent, SEQ(w) + 1)) : \
    ((ST(w) == TAKEN && kind[i] == KDELIVERED) -> !alive[snd[i]] : !alive[REF(w)])))
#else
#define HOLDER_DEAD(w, i) 1        /* mutant: repair without asking whether the holder is dead */
#endif

/* suspectedOrphans() finds slot k, and its taker is dead: taken by a receiver entry whose intent
 * names it, or full behind head (an unnamed take: its taker's intent names it) */
#define ORPHAN(k) ((ST(slotw[k]) == TAKEN && isRecv[REF(slotw[k])] && \
                    intent[REF(slotw[k])] == SEQ(slotw[k]) + 1 && kind[k] != KDELIVERED && \
                    !alive[REF(slotw[k])]) || \
                   (ST(slotw[k]) == FULL && head > SEQ(slotw[k]) && !ANY_LIVE(intent, SEQ(slotw[k]) + 1)))

/* hand message `id` (slot i, redelivered flag rf) to the caller */
inline deliver() {
    assert(id >= 1 && id < NMSG && committed[id]);
    assert(!retracted[id] && !withdrawn[id]);
    /* a second delivery carries the mark */
    assert(dcount[id] == 0 || rf);
    /* never again once finished: only a message whose receiver died before releasing it
       comes back */
    assert(!released[id]);
    if :: dcount[id] < 2 -> dcount[id]++ :: else fi
}

/* holderIsDead(w, at: p) -> dead */
inline holderIsDead() {
    atomic {
        i = p % C;
        dead = HOLDER_DEAD(w, i)
    }
}

/* repair(stuck: w, at: p, by: me): the caller found holderIsDead */
inline repair() {
    i = p % C;
    if
    :: SEQ(w) != p
    :: SEQ(w) == p && (ST(w) == CLAIMED || (ST(w) == EMPTY && tail > p)) ->
       atomic { if :: slotw[i] == w -> slotw[i] = W(p + C, EMPTY, 0); ok = 1;
                       PR("frees the dead claim of %d on position %d (state %d)\n", REF(w), p, ST(w))
                    :: else -> ok = 0 fi };
       if
       :: ok -> CRASH; ADVANCE(head, p); HELP_HEAD; CRASH
       :: else
       fi
    :: SEQ(w) == p && ST(w) == TAKEN ->
       kv = kind[i];
       if
       :: kv == KDELIVERED ->
          atomic { if :: slotw[i] == w -> slotw[i] = W(p + C, EMPTY, 0);
                          PR("frees the delivered receipt at %d (its sender %d is dead)\n", p, snd[i]) :: else fi };
          CRASH
       :: kv == KRECEIPT && alive[snd[i]]       /* its sender still waits: left to it */
       :: tail != p + C                           /* not stopped at tail by it: not ours to requeue */
       :: else ->
          /* announce the slot (receiver intent) and the claim of p + C (sender intent) first */
          atomic { intent[me] = p + 1; sintent[me] = p + C + 1; isRecv[me] = 1 };
          CRASH;
          atomic {
              if
#ifndef MUTANT_REPAIR_STORE
              :: slotw[i] == w ->
#else
              /* mutant: the slot is taken over by a plain store after the checks (on the word
                 observed earlier), not by a CAS on that exact word */
              :: true ->
#endif
                 slotw[i] = W(p, TAKEN, me); ok = 1;
                 PR("adopts message %d at %d (its taker %d is dead)\n", pay[i], p, REF(w))
              :: else -> ok = 0
              fi
          };
          if
          :: ok ->
             CRASH;                                           /* repair.after-adopt */
             /* claim p + C (seq_cst CAS on tail): nobody else can, the slot is ours */
             atomic { assert(tail == p + C); tail = p + C + 1; PR("claims position %d for the requeue\n", p + C) };
             CRASH;
             atomic { kind[i] = KMSG; rflag[i] = 1 };
             CRASH;                                           /* repair.after-redeliver-mark */
             atomic { assert(slotw[i] == W(p, TAKEN, me)); slotw[i] = W(p + C, FULL, me);
                      PR("requeues message %d at position %d, marked redelivered\n", pay[i], p + C) };
             CRASH
          :: else
          fi
       fi
    :: else
    fi
}

/* ================================ sender ==================================================== */

/* commit(t): the slot is claimed by me */
inline commit() {
    i = t % C;
    if
    :: atomic {                     /* sender identity, fill, length, kind: nobody else reads or
                                     * writes a claimed slot's fields */
           snd[i] = me; pay[i] = myMsg;
           kind[i] = (receipt -> KRECEIPT : KMSG); rflag[i] = 0;
           PR("writes message %d at %d\n", myMsg, t)
       };
       CRASH;                                                 /* shared.send.after-payload */
       atomic {
           assert(slotw[i] == W(t, CLAIMED, me));             /* a live claim is never taken */
           slotw[i] = W(t, FULL, me); committed[myMsg] = 1; left--; res = 1;
           PR("commits message %d at %d (full)\n", myMsg, t)
       };
       CRASH                                                  /* shared.send.after-commit */
    :: mayFail ->          /* fill throws: giveBack */
       atomic { assert(slotw[i] == W(t, CLAIMED, me)); slotw[i] = W(t + C, EMPTY, 0);
                PR("fill fails: gives position %d back (head is %d)\n", t, head) };
       CRASH;
       ADVANCE(head, t); HELP_HEAD;
       left--; res = 3
    fi
}

/* tryWrite -> res: 1 written (at t), 2 full (blockedBy w, position p), 3 fill failed */
inline tryWrite() {
    res = 0; spins = 0;
    do
    :: res != 0 -> break
    :: else ->
       assert(!final || spins < 4 * C + 4); spins++;          /* Final: no endless retries */
       t = tail;
       cur = slotw[t % C];
       if
       :: SEQ(cur) == t && ST(cur) == EMPTY ->
          /* the claim: sender intent, then CAS tail t -> t + 1 (seq_cst) */
#ifndef MUTANT_LATE_INTENT
          atomic { sintent[me] = t + 1 };
          CRASH;
#endif
          atomic {
              if
              :: tail == t -> tail = t + 1; ok = 1; PR("claims position %d (tail)\n", t)
              :: else -> ok = 0
              fi
          };
#ifdef MUTANT_LATE_INTENT
          /* mutant: the intent follows the claim */
          if :: ok -> atomic { sintent[me] = t + 1 } :: else fi;
#endif
          if
          :: ok ->
             CRASH;                                           /* shared.send.after-tail-claim */
             atomic {
                 /* nobody frees or skips the slot of a live claimer */
                 assert(slotw[t % C] == cur);
                 slotw[t % C] = W(t, CLAIMED, me); PR("names itself in position %d\n", t)
             };
             CRASH;                                           /* shared.send.after-claim */
             commit()
          :: else -> atomic { sintent[me] = 0 }; CRASH        /* lost: clear the intent */
          fi
       /* claimed for t, or a later lap, already: a claim moves tail before it writes the slot, so
        * t is stale (retry), unless tail still reads t (corrupted) */
       :: SEQ(cur) >= t && !(SEQ(cur) == t && ST(cur) == EMPTY) -> atomic { CORRUPTED(tail == t) }
       :: SEQ(cur) < t -> atomic { res = 2; w = cur; p = t - C }
       fi
    od
}

#ifdef RECEIPTS
/* delivery(at: t) -> dl: 1 waiting, 2 taking (cur), 3 delivered (slot freed), 4 lost */
inline delivery() {
    cur = slotw[i];
    if
    :: SEQ(cur) != t -> dl = 4
    :: SEQ(cur) == t && ST(cur) == FULL -> dl = 1
    :: SEQ(cur) == t && ST(cur) == TAKEN ->
       kv = kind[i];                                          /* isDelivered */
       if
       :: kv == KDELIVERED ->
          takenBy[i] != 0;                                    /* (who took it) */
          atomic {
              if
              :: slotw[i] == cur -> slotw[i] = W(t + C, EMPTY, 0); dl = 3; PR("collects the receipt of message %d\n", myMsg)
#ifdef FIX_DELIVERY_RACE
              :: else -> dl = 1                               /* the word moved on: look again */
#else
              :: else -> dl = 4;
                 PR("delivery(at: %d): read the word taken by %d, then kind delivered; its CAS fails: .lost\n", t, REF(cur))
#endif
              fi
          }
       :: else -> dl = 2
       fi
    :: SEQ(cur) == t && (ST(cur) == EMPTY || ST(cur) == CLAIMED) -> dl = 4
    fi
}

/* .lost while the sender still waits: the sender throws receiverDied, so the message must not
 * have been handed out, and no slot may be left behind. */
#define LOST_CHECK assert(dl != 4)

/* awaitReceipt(at: t) for message myMsg (Mailbox+Receipts.swift): the sender waits until a
 * receiver has taken and read it, and frees the slot; at the deadline it takes the message back
 * (retract), or, if a receiver has it, abandons the receipt. */
inline awaitReceipt() {
    i = t % C;
    do
    :: delivery();
       LOST_CHECK;
       if
       :: dl == 3 -> assert(dcount[myMsg] >= 1); CRASH; break /* .delivered: it was */
       :: dl == 1 ->
          /* .waiting: wait for a change, or the deadline */
          if :: slotw[i] != cur :: goto gaveup fi
       :: dl == 2 ->
          /* .taking(word: cur): wait for a change; after the stall, withdraw it if its
           * receiver is dead (retract(taken:), receiverDied); or the deadline */
          if
          :: slotw[i] != cur || kind[i] != kv
          :: atomic { slotw[i] == cur && HOLDER_DEAD(cur, i) } ->
             atomic {
                 if
                 :: slotw[i] == cur -> slotw[i] = W(t + C, EMPTY, 0); withdrawn[myMsg] = 1; ok = 1;
                    PR("withdraws message %d, its receiver %d died: receiverDied\n", myMsg, REF(cur))
                 :: else -> ok = 0
                 fi
             };
             if :: ok -> CRASH; break :: else fi             /* receiverDied */
          :: goto gaveup
          fi
       fi
    od;
    goto awaited;
gaveup:
    /* retract(at: t) */
    atomic {
        if
        :: slotw[i] == W(t, FULL, me) ->
           slotw[i] = W(t + C, EMPTY, 0); ok = 1;
           PR("takes message %d back: timedOut\n", myMsg);
           assert(dcount[myMsg] == 0); retracted[myMsg] = 1
        :: else -> ok = 0
        fi
    };
    if
    :: ok -> CRASH; ADVANCE(head, t); HELP_HEAD; CRASH; goto awaited    /* timedOut */
    :: else
    fi;
    /* a receiver has it: collect the receipt if it is done (check), else abandon */
    delivery();
    LOST_CHECK;
    if
    :: dl == 3 -> assert(dcount[myMsg] >= 1); CRASH; goto awaited
    :: else
    fi;
    /* abandon(at: t) */
    do
    :: kv = kind[i];
       if
       :: kv == KRECEIPT ->
          atomic { if :: kind[i] == kv -> kind[i] = KABANDONED; ok = 1; PR("abandons the receipt of message %d\n", myMsg) :: else -> ok = 0 fi };
          if :: ok -> CRASH; goto awaited :: else fi          /* deliveryUnconfirmed */
       :: else -> break
       fi
    od;
    /* delivered just now: check() again */
    delivery();
    LOST_CHECK;
    if
    :: dl == 3 -> assert(dcount[myMsg] >= 1); CRASH
    :: else                                                   /* deliveryUnconfirmed */
    fi;
awaited:
    skip
}
#endif

proctype Sender(byte sp) {
    byte tag = 'S';
    byte me, left, t, p, i, kv, myMsg, spins, dl, hh;
    short cur, w, hw;
    bit ok, dead, receipt, final;
    bit mayFail = 1;
    bit mayDie = (DIERS & 1);
    byte res;

    left = K;
#ifdef RECEIPTS
    receipt = (sp == 0);
#endif
    me = sp + 1;
restart:
    alive[me] = 1;
    do
    :: left == 0 -> break
    :: left > 0 ->
       myMsg = sp * K + (K - left) + 1;
       tryWrite();
       if
       :: res == 1 ->
#ifdef RECEIPTS
          if :: receipt -> awaitReceipt() :: else fi;
#endif
          skip
       :: res == 3
       :: res == 2 ->
          /* full (blocked by w at p = t - C). Wait: retry once tail or that slot changed (a retry
           * reading the same words finds the same); noteStall: once the slot stayed the same for
           * the stall time and its holder is dead, repair it; or give up (trySend: full). */
          if
          :: tail != t || slotw[t % C] != w
          :: atomic { ST(w) != FULL && slotw[t % C] == w &&
                      HOLDER_DEAD(w, t % C) } ->
             repair()
          :: left--
          fi
       fi;
       atomic { t = 0; p = 0; i = 0; kv = 0; cur = 0; w = 0; ok = 0; dead = 0; res = 0; myMsg = 0; spins = 0; dl = 0 }
    od;
    finished++;
    goto end;
died:
    atomic { alive[me] = 0; me = nextId; nextId++;
             t = 0; p = 0; i = 0; kv = 0; cur = 0; w = 0; ok = 0; dead = 0; res = 0; myMsg = 0; spins = 0; dl = 0 };
    goto restart;
end:
    skip
}

/* ================================ receiver ================================================== */

/* consume(p): the slot is taken by me; reads it, hands it out, finishes with it */
inline consume() {
    i = p % C;
    atomic {               /* length, kind, sender and payload loads, and the body */
        assert(slotw[i] == W(p, TAKEN, me));                  /* nobody took it from us */
        kv = kind[i]; rf = rflag[i]; id = pay[i];
        PR("hands out message %d (position %d), redelivered mark %d\n", id, p, rf);
        CORRUPTED(kv != KMSG && kv != KRECEIPT && kv != KABANDONED);
        deliver()
    };
    CRASH;                                                    /* shared.receive.before-release */
    if
    :: kv == KRECEIPT ->
       /* finishReceipt */
       atomic { takenBy[i] = me };
       CRASH;                                                 /* receipt.before-delivered */
       do
       :: kv = kind[i];
          if
          :: kv == KRECEIPT ->
             atomic {
                 assert(slotw[i] == W(p, TAKEN, me));         /* still ours */
                 if :: kind[i] == kv -> kind[i] = KDELIVERED; released[id] = 1; ok = 1; PR("marks %d delivered\n", p) :: else -> ok = 0 fi
             };
             if :: ok -> CRASH; break :: else fi              /* receipt.after-delivered */
          :: else ->
             atomic { assert(slotw[i] == W(p, TAKEN, me)); slotw[i] = W(p + C, EMPTY, 0); released[id] = 1; PR("frees position %d\n", p) };  /* abandoned */
             CRASH;
             break
          fi
       od
    :: else ->
       atomic { assert(slotw[i] == W(p, TAKEN, me)); slotw[i] = W(p + C, EMPTY, 0); released[id] = 1; PR("frees position %d\n", p) };  /* free */
       CRASH
    fi
}

/* tryRead -> res: 1 message, 2 empty, 3 pending (w, p) */
inline tryRead() {
    res = 0; spins = 0;
    do
    :: res != 0 -> break
    :: else ->
       assert(!final || spins < 4 * C + 4); spins++;          /* Final: no endless retries */
       h = head;
       cur = slotw[h % C];
       if
       :: SEQ(cur) == h && ST(cur) == FULL ->
          /* the kind (and, for the ghost checks, the message) of cur: load it, then the word
           * again, so that the two belong together (a receipt message taken back and its slot
           * reused a lap later would lend us the next message's kind) */
          i = h % C;
          atomic { kv = kind[i]; id = pay[i]; rf = rflag[i] };
          if
#ifndef MUTANT_NO_RECHECK
          :: slotw[i] != cur                                  /* changed: look again */
          :: else ->
#else
          :: true ->                        /* mutant: trusts a kind read after the word */
#endif
             atomic { intent[me] = h + 1; PR("intent %d\n", h) };
             CRASH;                                           /* shared.receive.after-intent */
             /* the take: CAS head h -> h + 1 (acquire-release) */
             atomic {
                 if
                 :: head == h ->
                    head = h + 1; ok = 1;
                    PR("takes message %d at %d (head)\n", id, h);
                    /* per sender: first takes (the head CAS orders them) in the order sent */
                    if
                    :: !rf -> assert(id > lastTaken[MSGPROC(id)]); lastTaken[MSGPROC(id)] = id
                    :: else
                    fi
                 :: else -> ok = 0
                 fi
             };
             if
             :: ok ->
                CRASH;                                        /* shared.receive.after-head-take */
                if
                :: kv == KRECEIPT ->
                   /* its sender may take it back until it reads taken: CAS */
                   atomic {
                       if
                       :: slotw[i] == cur -> slotw[i] = W(h, TAKEN, me); ok = 1; PR("names itself in %d (CAS)\n", h)
                       :: else -> ok = 0; PR("finds message %d taken back\n", id)
                       fi
                   }
                :: else ->
                   atomic {
                       /* nobody changes a full slot behind head while its taker lives */
                       assert(slotw[i] == cur);
                       slotw[i] = W(h, TAKEN, me); PR("names itself in %d\n", h)
                   }
                fi;
                if
                :: ok -> CRASH; p = h; consume(); res = 1     /* shared.receive.after-take */
                :: else
                fi
             :: else -> atomic { intent[me] = 0 }; CRASH      /* lost: clear the intent */
             fi
          fi
       :: SEQ(cur) == h && ST(cur) == EMPTY -> res = 2
       :: SEQ(cur) == h && ST(cur) == CLAIMED -> atomic { res = 3; w = cur; p = h }
       /* taken for h: a take moves head before it names itself, so h is stale (retry), unless
        * head still reads h (corrupted) */
       :: SEQ(cur) == h && ST(cur) == TAKEN -> atomic { CORRUPTED(head == h) }
       :: SEQ(cur) < h -> res = 2
#ifndef FIX_HEAD_LAPS
       :: SEQ(cur) > h && SEQ(cur) - h > 2 * C ->
          atomic { PR("finds slot %d at sequence %d, more than 2C ahead of head %d: corrupted\n", h % C, SEQ(cur), h);
                   CORRUPTED(head == h) }
       :: SEQ(cur) > h && SEQ(cur) - h <= 2 * C -> ADVANCE(head, h)
#else
       /* Proposed fix: a slot may run any number of laps ahead of a head left behind by
        * give-backs; only a sequence beyond tail + C is impossible. */
       :: SEQ(cur) > h -> atomic { CORRUPTED(SEQ(cur) > tail + C) }; ADVANCE(head, h)
#endif
       fi
    od
}

/* adopt(w, at: p) of slot i: w is a dead receiver's take, found through its intent */
inline adopt() {
    atomic { intent[me] = p + 1; PR("intent %d (an orphan of %d)\n", p, REF(w)) };
    CRASH;
    atomic {
        if
        :: slotw[i] == w ->
           slotw[i] = W(p, TAKEN, me); ok = 1;
           PR("adopts message %d at %d\n", pay[i], p)
        :: else -> ok = 0
        fi
    };
    if
    :: ok ->
       CRASH;                                                 /* repair.after-adopt */
#ifndef MUTANT_NO_MARK
       atomic { rflag[i] = 1 };
#else
       skip;                        /* mutant: the adopter does not mark the message redelivered */
#endif
       CRASH;                                                 /* repair.after-redeliver-mark */
       consume(); res = 1
    :: else
    fi
}

/* suspectedOrphans() for slot i -- taken by a receiver entry whose intent names it, not yet
 * delivered -- then holderIsDead, then adopt. (Final's orphan search.) */
inline adoptOrphan() {
    atomic {
        w = slotw[i]; p = SEQ(w); e = REF(w);
        ok = (ST(w) == TAKEN && isRecv[e] && intent[e] == p + 1 && kind[i] != KDELIVERED) ||
             (ST(w) == FULL && head > p)                     /* an unnamed take */
    };
    if
    :: ok ->
       holderIsDead();
       if :: dead -> adopt() :: else fi
    :: else
    fi
}

proctype Receiver(byte rp) {
    byte tag = 'R';
    byte me, h, p, i, kv, id, e, res, spins, hh;
    short cur, w, hw;
    bit ok, dead, rf, final;
    bit mayDie = ((DIERS & 2) != 0);

    me = NS + rp + 1;
restart:
    atomic { alive[me] = 1; isRecv[me] = 1 };
    do
    :: tryRead();
       if
       :: res == 1
       :: res == 3 ->
          /* a claim w at head h. Wait: retry once head or the slot changed; noteStall: once it
           * stayed the same for the stall time and its claimant is dead, repair it; or give up. */
          if
          :: head != h || slotw[h % C] != w
          :: atomic { slotw[h % C] == w && HOLDER_DEAD(w, h % C) } -> repair()
          :: break
          fi
       :: res == 2 ->
          /* empty (found cur at h). Wait: retry once head or the slot changed; or adopt a
           * suspected orphan whose taker is dead (suspectedOrphans, stall, holderIsDead); or
           * give up. */
          if
          :: head != h || slotw[h % C] != cur
          /* an unwritten claim at head (unwrittenClaimAtHead), its claimer dead: skip it */
          :: atomic { ST(cur) == EMPTY && SEQ(cur) == h && slotw[h % C] == cur && HOLDER_DEAD(cur, h % C) ->
                      w = cur; p = h }; repair()
          :: atomic { ORPHAN(0) -> i = 0; w = slotw[0]; p = SEQ(w) }; res = 0; adopt()
          :: atomic { C > 1 && ORPHAN(1) -> i = 1; w = slotw[1]; p = SEQ(w) }; res = 0; adopt()
          :: atomic { C > 2 && ORPHAN(2) -> i = 2; w = slotw[2]; p = SEQ(w) }; res = 0; adopt()
          :: break
          fi
       fi;
       atomic { h = 0; p = 0; i = 0; kv = 0; id = 0; e = 0; res = 0; cur = 0; w = 0;
                ok = 0; dead = 0; rf = 0; spins = 0 }
    :: break
    od;
    finished++;
    goto end;
died:
    atomic { alive[me] = 0; me = nextId; nextId++;
             h = 0; p = 0; i = 0; kv = 0; id = 0; e = 0; res = 0; cur = 0; w = 0;
             ok = 0; dead = 0; rf = 0; spins = 0 };
    goto restart;
end:
    skip
}

/* ================================ after the scenario ======================================== */

/* Final: a new process, alone: sends C + 1 probes (so its tail passes every slot), draining
 * the ring and repairing whatever blocks it; all of it must succeed within a bound. */
proctype Final() {
    byte tag = 'F';
    byte me, t, h, p, i, kv, id, e, res, myMsg, left, sp, n, steps, spins, hh, dl;
    short cur, w, hw;
    bit ok, dead, rf, receipt, mayFail, mayDie;
    bit final = 1;

    /* alone from here on (one atomic run: nobody else is left to interleave), and it does not die */
    atomic {
    finished == NS + NR;
    me = nextId; nextId++; alive[me] = 1; isRecv[me] = 1; sp = NS;
    n = 0;
    do
    :: n < PROBES ->
       left = 1; steps = 0; myMsg = NS * K + n + 1;
       do
       :: left == 0 -> break
       :: else ->
          assert(steps < 3 * C + 3); steps++;               /* no wedge */
          tryWrite();
          if
          :: res == 2 ->
             if
             :: ST(w) != FULL -> holderIsDead(); if :: dead -> repair() :: else fi
             :: else
             fi
          :: else
          fi;
          /* drain */
          do
          :: tryRead();
             if
             :: res == 1
             :: res == 3 -> holderIsDead(); assert(dead); repair()
             :: res == 2 ->
                /* an unwritten claim at head: everyone else is dead or done */
                if
                :: SEQ(cur) == h && ST(cur) == EMPTY && tail > h -> w = cur; p = h; holderIsDead(); assert(dead); repair()
                :: else
                fi;
                /* orphans: every receiver entry */
                i = 0; ok = 0;
                do
                :: i < C && res != 1 -> res = 0; adoptOrphan(); if :: res != 1 -> i++ :: else fi
                :: else -> break
                od;
                if :: res == 1 :: else -> break fi
             fi
          od
       od;
       n++
    :: else -> break
    od;
    /* no loss: every message committed and not taken back was handed out */
    i = 1;
    do
    :: i < NMSG -> assert(!committed[i] || retracted[i] || withdrawn[i] || dcount[i] >= 1); i++
    :: else -> break
    od
    };
    goto end;
died:
    assert(false);                                            /* Final does not die */
end:
    skip
}

init {
    byte x;
    atomic {
        assert(NIDS <= 16 && C <= 3);    /* REF() keeps 4 bits; the orphan guards cover 3 slots */
        /* SharedRing.initialize: slot i starts empty for position i */
        x = 0;
        do :: x < C -> slotw[x] = W(x, EMPTY, 0); x++ :: else -> break od;
        x = 0;
        do :: x < NS -> run Sender(x); x++ :: else -> break od;
        x = 0;
        do :: x < NR -> run Receiver(x); x++ :: else -> break od;
        run Final()
    }
}
