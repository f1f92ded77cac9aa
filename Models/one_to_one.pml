/*
 * one_to_one.pml -- crash repair of the one-to-one (single sender, single receiver) byte ring.
 *
 * Protocol: Sources/ShmMailbox/Ring/OneToOneRing.swift (segment format v2), driven as
 * Mailbox+Send.swift does (batches; flushSends() before waiting for room), as
 * Mailbox+Receive.swift does (receive, and receiveBatch: release: false, then finishReceives())
 * and as Mailbox+Roles.swift does (a process that takes a role over from a dead holder runs
 * startSending() / startReceiving() first).
 *
 * Abstraction (Models/README.md argues each point):
 *   - The data area has N units (a unit stands for the 16-byte record granule). A message record
 *     is 1 or 2 units (MAXREC = 2, i.e. record(maxMessageSize)); when a record does not fit
 *     before the end of the area, a padding record fills the rest (toEnd < MAXREC).
 *   - Positions do not wrap in the model (a byte that stays far below 256), so a stamp is
 *     position + 1, and a stamp of an earlier lap never matches: that is what the 64-bit stamps
 *     (XORed with the segment key) give the Swift code.
 *   - Every unit has a stamp word, a length field and a payload word (the message id), read
 *     only at record starts.
 *   - Sender role and receiver role: one process each, running incarnations one after another.
 *     An incarnation can die right after any of its stores to shared memory (or after handing a
 *     message to its caller). Dying anywhere else is the same: loads change nothing, so a process
 *     that dies later without storing anything leaves the same state behind. The next
 *     incarnation is the process that claimed the role word from the dead holder; it starts with
 *     nothing but the shared words.
 *   - A d_step holds at most one store, or loads of words nobody else can change meanwhile
 *     (argued where it happens), together with the process's local work.
 *   - Retry loops (ring full, ring empty) block until a shared word they read changes: a retry
 *     that reads the same words computes the same result, so no behaviour is lost, and a wedge
 *     shows up as an invalid end state (deadlock) in a plain safety search.
 *   - Every `throw MailboxError.corrupted` of the Swift code is an assertion (CORRUPTED): the
 *     protocol must never report corruption of an honest segment.
 *
 * Workload: the sender sends until at least M messages are in, and every incarnation that
 * follows a death (of either role) must get at least one more message through (no-wedge); the
 * receiver receives until the sender is done and it has read up to the true tail.
 *
 * -DV1_TAKEOVER: the version-1 takeover: a new sender resumes from the *published* tail (and its
 *   published counts) instead of walking the stamps. Expected to FAIL.
 * -DMUTANT_IGNORE_READINGUPTO: a deliberately broken receiver takeover (the check must catch it).
 * -DV1_UNCHECKED (with V1_TAKEOVER): v1 when its cached head said "room", so that it did not
 *   reload and check head before writing at the published tail.
 * -DFIX_READINGUPTO: a receiver that redelivers stores max(end, redeliverBelow) as readingUpTo
 *   instead of end (the proposed fix for the lost redelivered mark, see README).
 * -DFIX_HINT_LAG: leaves out checkEmpty()'s "tail hint trails head by more than the area"
 *   corruption check (the proposed fix: a sender killed between stamping and publishing, or
 *   inside a batch, lets the receiver pass the hint by more than the area, and the receiver
 *   then throws `corrupted` on a healthy ring; see README).
 */

#ifndef N
#define N 4            /* data area, in units */
#endif
#ifndef CAP
#define CAP 2          /* capacity: most messages waiting at once */
#endif
#ifndef M
#define M 4            /* messages sent at least */
#endif
#ifndef MAXSD
#define MAXSD 1        /* sender deaths */
#endif
#ifndef MAXRD
#define MAXRD 1        /* receiver deaths */
#endif
#define MAXMSG (M + MAXSD + MAXRD)
#define MAXREC 2       /* largest record, in units */
#define PAD 3          /* the length field of a padding record (SegmentLayout.paddingLength) */

/* A `throw MailboxError.corrupted(...)` in the Swift code: must be unreachable. */
#define CORRUPTED(c) assert(!(c))

/* ---- shared memory ------------------------------------------------------------------------ */
byte stamp[N];         /* record stamp: position + 1 of the record that starts here */
byte rlen[N];          /* record length field: 1..MAXREC units, or PAD */
byte mid[N];           /* payload: the message id */
byte headW;            /* `head`: the receiver's one word */
byte tailW;            /* `tail`: the sender's published tail, a hint */
byte readingUpTo;      /* end of the record the receiver hands out */

/* ---- ghost state (for the invariants only; no protocol step reads it) ---------------------- */
byte stamped;          /* messages stamped so far; message k is the k-th stamped */
byte trueTail;         /* end of the last stamped record */
byte releasedId;       /* id of the last message below headW */
byte maxDelivered;     /* highest id handed to a receiver's caller */
byte dcount[MAXMSG + 1];  /* how often each message was handed out (saturates at 2) */
bit sfinished;         /* the sender role is done */
byte sdeaths, rdeaths;
byte rdiedAt;          /* `stamped` when a receiver last died */

/* ================================ sender ================================================== */

/* Enough sent: M in all, one more by each incarnation that follows a sender's death, and one
 * more after each receiver's death. */
#define DONE (stamped >= M && (mine > 0 || sdeaths == 0) && stamped > rdiedAt)

/* The sender incarnation may die here (right after a store). */
#define SCRASH if :: sdeaths < MAXSD -> goto sdied :: skip fi

/* publishWrites(): stores the tail hint if it is not up to date. */
inline publishWrites() {
    if
    :: pub != tail -> d_step { tailW = tail; pub = tail; printf("S%d: publishes tail %d\n", sdeaths + 1, tail) }; SCRASH
    :: else
    fi
}

/* countReceived(): loads head and counts off the messages of the records it passed. One step:
 * after the load of head, the walk reads records below head that only this sender may write,
 * and it does not (it is here). */
inline countReceived() {
    d_step {
        h = headW;
        /* head - counted <= tail - counted (wrapping): head lies between counted and tail */
        CORRUPTED(h < counted || h - counted > tail - counted);
        p = counted; passed = 0;
        do
        :: p != h ->
           ci = p % N;
           CORRUPTED(stamp[ci] != p + 1);
           if
           :: rlen[ci] == PAD -> sz = N - ci; CORRUPTED(sz >= MAXREC)
           :: else -> sz = rlen[ci]; CORRUPTED(sz < 1 || sz > MAXREC || sz > N - ci); passed++
           fi;
           CORRUPTED(sz > h - p);
           p = p + sz
        :: else -> break
        od;
        CORRUPTED(passed > inflight);
        inflight = inflight - passed; counted = h;
        p = 0; ci = 0; sz = 0; passed = 0
    }
}

/* tryWrite(length: rec, publish:) -> ok */
inline tryWrite() {
    d_step {
        pos = tail; idx = pos % N; toEnd = N - idx;
        needed = (toEnd < rec -> toEnd + rec : rec);
        ok = (inflight < CAP && pos + needed - counted <= N)
    }
    if
    :: !ok ->
       countReceived();
       ok = (inflight < CAP && pos + needed - counted <= N)
    :: else
    fi;
    if
    :: ok ->
       if
       :: toEnd < rec ->
          /* writeHeader(padding): length, then the stamp (release). The length store is
           * invisible until the stamp (every reader checks the stamp first), so one step. */
          d_step { rlen[idx] = PAD; stamp[idx] = pos + 1; trueTail = pos + toEnd;
                   printf("S%d: stamps padding %d..%d\n", sdeaths + 1, pos, pos + toEnd);
                   pos = pos + toEnd; idx = 0; tail = pos };
          SCRASH                                              /* o2o.send.after-padding */
       :: else
       fi;
       /* fill, then writeHeader's length and sender fields: invisible until the stamp */
       d_step { mid[idx] = stamped + 1; rlen[idx] = rec;
                printf("S%d: writes message %d at %d (not stamped)\n", sdeaths + 1, stamped + 1, pos) };
       SCRASH;                                                /* o2o.send.after-payload */
       d_step {                                               /* the stamp, release */
           stamp[idx] = pos + 1;
           stamped++; mine++; trueTail = pos + rec;
           printf("S%d: stamps message %d at %d..%d\n", sdeaths + 1, stamped, pos, pos + rec);
           /* capacity: messages between the receiver's head and the true tail */
           assert(stamped - releasedId <= CAP);
           pos = pos + rec; tail = pos; inflight++
       };
       SCRASH;                                                /* o2o.send.after-stamp */
       if
       :: publish || tail - pub >= N / 2 -> publishWrites()   /* o2o.send.after-publish */
       :: else
       fi
    :: else
    fi
}

active proctype Sender() {
    byte tail, pub, counted, inflight;    /* LocalState */
    byte pos, idx, ci, toEnd, needed, rec, h, p, sz, passed, msgs, mine;
    bit ok, publish, walking;

srestart:
    skip;   /* (a goto may not jump into a d_step) */
    /* ---- startSending(): find the true tail. One step: only this sender writes the area
     * and the tail hint, and it is here; head is loaded first. ---- */
    d_step {
        h = headW; pos = h; msgs = 0; mine = 0;
#ifdef V1_TAKEOVER
        /* Version 1: resume from the published tail (and the published counts: here the
         * messages between head and that tail). v1 threw `corrupted` when head > tail. */
        tail = tailW;
#ifndef V1_UNCHECKED
        CORRUPTED(h > tail);
#else
        /* v1 reloaded (and checked) head only when its caches said "full"; a new process's
         * caches (zero) may say "room": it then wrote at the published tail unchecked. */
        h = (h > tail -> tail : h);
        pos = h;
#endif
        /* (a stand-in for v1's published counts: the messages from head to that tail) */
        do
        :: pos < tail ->
           idx = pos % N;
           if
           :: rlen[idx] == PAD -> sz = N - idx
           :: else -> sz = rlen[idx]; msgs++
           fi;
           if :: sz == 0 -> break :: else -> pos = pos + sz fi
        :: else -> break
        od;
#else
        walking = 1;
        do
        :: walking && pos - h < N ->
           idx = pos % N;
           if
           :: stamp[idx] != pos + 1 -> walking = 0
           :: else ->
              if
              :: rlen[idx] == PAD -> sz = N - idx; CORRUPTED(sz >= MAXREC)
              :: else -> sz = rlen[idx]; CORRUPTED(sz < 1 || sz > MAXREC || sz > N - idx); msgs++
              fi;
              CORRUPTED(sz > N - (pos - h));
              pos = pos + sz;
              CORRUPTED(msgs > CAP)
           fi
        :: else -> break
        od;
        tail = pos;
#endif
        counted = h; inflight = msgs; pub = tailW;
        printf("S%d: starts sending: head %d, tail %d (%d waiting), tail hint %d\n", sdeaths + 1, h, tail, msgs, pub);
        h = 0; pos = 0; idx = 0; sz = 0; msgs = 0; walking = 0
    };

    /* ---- send: at least M in all, and at least one after each death ---- */
    do
    :: atomic {
           DONE && pub == tail ->
           sfinished = 1      /* (atomic with the test: a receiver dies only before this) */
       };
       break
    :: pub != tail -> publishWrites()           /* leaveBatch(): the batch ends */
    :: !DONE ->
       if :: rec = 1 :: rec = 2 fi;
       if :: publish = 1 :: publish = 0 fi;     /* 0: inside Mailbox.batch */
       do
       :: tryWrite();
          if
          :: ok -> break
          :: else ->
             publishWrites();                   /* flushSends() before waiting for room */
             headW != h                         /* wait: a retry reads head again */
          fi
       od;
       /* forget the scratch values (keeps equal states equal) */
       atomic { pos = 0; idx = 0; toEnd = 0; needed = 0; rec = 0; h = 0; ok = 0; publish = 0 }
    od;
    goto sdone;

sdied:
    printf("S%d: dies\n", sdeaths + 1);
    sdeaths++;
    goto srestart;
sdone:
    skip
}

/* ================================ receiver ================================================ */

/* The receiver incarnation may die here (right after a store, or after handing a message out). */
#define RCRASH if :: atomic { rdeaths < MAXRD && !sfinished -> rdiedAt = stamped }; goto rdied :: skip fi

/* releaseReads(): publishes head (and, as ghost, the id of the last message below it). */
inline releaseReads() {
    if
    :: rel != head -> d_step { headW = head; rel = head; releasedId = lastId; printf("R%d: releases head %d\n", rdeaths + 1, head) }; RCRASH
    :: else
    fi
}

/* tryRead(release:) -> got. Loads the stamp at head and, if it is right, the record's length
 * (one step: the sender stored the length before the stamp and leaves the record alone until
 * head passes it); on an empty ring `seen` is the stamp found. */
inline tryRead() {
    d_step {
        got = 0; isEmpty = 0; pos = head; idx = pos % N; seen = stamp[idx];
        if :: seen == pos + 1 -> l = rlen[idx] :: else -> isEmpty = 1 fi
    };
    if
    :: !isEmpty && l == PAD ->
       /* skip the padding: local progress */
       d_step {
           CORRUPTED(N - idx >= MAXREC);
           pos = pos + (N - idx); idx = 0; head = pos;
           seen = stamp[0];
           if :: seen == pos + 1 -> l = rlen[0] :: else -> isEmpty = 1 fi
       };
       if :: isEmpty && release -> releaseReads() :: else fi
    :: else
    fi;
    if
    :: isEmpty ->
       /* checkEmpty(at: pos): the published tail must be plausible; if it covers pos, the
        * stamp must be there (tail is stored after the stamps it covers, and the stamp at pos
        * stays until head passes pos, so loading both in one step changes nothing). */
       d_step {
           printf("R%d: empty at %d (tail hint %d)\n", rdeaths + 1, pos, tailW);
#ifndef FIX_HINT_LAG
           /* "The tail hint may trail the head ... never by a whole area." */
           CORRUPTED(tailW + N < pos);
#endif
           CORRUPTED(tailW > pos + N);
           CORRUPTED(tailW > pos && stamp[pos % N] != pos + 1)
       }
    :: else ->
       d_step {
           CORRUPTED(l < 1 || l > MAXREC || l > N - idx);
           end = pos + l; redelivered = (pos < below)
       };
#ifdef FIX_READINGUPTO
       /* Proposed fix: never shrink the range a dead receiver left behind. */
       d_step { readingUpTo = (end > below -> end : below);
                printf("R%d: readingUpTo = %d\n", rdeaths + 1, readingUpTo) };
#else
       /* stored before the caller sees the record */
       d_step { readingUpTo = end; printf("R%d: readingUpTo = %d\n", rdeaths + 1, end) };
#endif
       RCRASH;                                /* o2o.receive.after-intent */
       d_step {                               /* body: the caller gets the payload */
           id = mid[idx];
           printf("R%d: hands out message %d (at %d), redelivered mark %d\n", rdeaths + 1, id, pos, redelivered);
           assert(id >= 1 && id <= stamped);
           /* no duplicate unless marked redelivered */
           assert(dcount[id] == 0 || redelivered);
           /* in order, nothing skipped */
           assert(redelivered || id == maxDelivered + 1);
           assert(id <= maxDelivered + 1);
           /* each receiver incarnation sees a strictly increasing sequence */
           assert(id > lastId);
           if :: dcount[id] < 2 -> dcount[id]++ :: else fi;
           if :: id > maxDelivered -> maxDelivered = id :: else fi;
           lastId = id; head = end; got = 1
       };
       RCRASH;                                /* o2o.receive.before-release */
       if :: release -> releaseReads() :: else fi
    fi
}

active proctype Receiver() {
    byte head, rel, below;                    /* LocalState */
    byte pos, idx, l, end, id, lastId, r, seen;
    bit release, got, first, isEmpty, redelivered;

rrestart:
    skip;   /* (a goto may not jump into a d_step) */
    /* ---- startReceiving() ---- */
    d_step { head = headW; rel = head; lastId = releasedId };
    d_step {
        r = readingUpTo;
#ifndef MUTANT_IGNORE_READINGUPTO
        below = ((r > head && r - head <= N) -> r : head);
#else
        below = head;      /* mutant: a new receiver ignores readingUpTo */
#endif
        printf("R%d: starts receiving: head %d, readingUpTo %d: redeliver below %d\n", rdeaths + 1, head, r, below);
        r = 0
    };
    do
    :: if
       :: release = 1                          /* receive / tryReceive */
       :: release = 0                          /* receiveBatch */
       fi;
       tryRead();
       first = got;
       if
       :: got && !release ->
          /* receiveBatch: the rest of the batch, without waiting */
          do
          :: tryRead(); if :: !got -> break :: else fi
          :: break                             /* limit reached */
          od
       :: else
       fi;
       releaseReads();                         /* finishReceives() */
       if
       :: first
       :: else ->
          /* empty: wait until the stamp at head changes, or everything is in */
          if
          :: stamp[head % N] != seen
          :: sfinished && head == trueTail -> break
          fi
       fi;
       /* forget the scratch values (keeps equal states equal) */
       atomic { pos = 0; idx = 0; l = 0; end = 0; id = 0; seen = 0;
                release = 0; got = 0; first = 0; isEmpty = 0; redelivered = 0 }
    od;
    goto rdone;

rdied:
    printf("R%d: dies\n", rdeaths + 1);
    rdeaths++;
    goto rrestart;
rdone:
    /* The end: every stamped message was received at least once (in order: checked above). */
    assert(sfinished && maxDelivered == stamped && stamped >= M)
}
