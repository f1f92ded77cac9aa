/*
 * Remote packs (Sources/ShmMailboxNATS/RemoteMailbox+Receive.swift, "Packs"): one JetStream
 * message carrying K messages, handed over one by one by receivers that may die (stop for good)
 * between any two of their steps. Checked: a message whose handing-over was committed (recorded
 * progress, or the pack's acknowledgement) is never handed over again; a message handed over a
 * second time is marked redelivered; once the pack is acknowledged, every message was handed.
 *
 * The server (JetStream's work-queue consumer): the pack is either waiting, delivered to one
 * receiver (its delivery count dc), or acknowledged. It is delivered again after a NAK, or once
 * its redelivery timer expired.
 *
 * Time, abstracted: a delivery's age goes young -> old (half the redelivery delay) -> expired,
 * advanced by the `clock` process only while its holder is between calls or dead (a receive
 * call in progress restarts the timer every quarter delay: +WPI), and reset to young by the
 * holder's in-progress notice at the end of a call. The one timing assumption: half the delay
 * passes before all of it.
 *
 * Defines: K (messages in the pack), L (the receive calls' limit), MAXD (deaths), CALLS (calls
 * per receiver). Mutants: MUTANT_NO_STALE_CHECK (a receiver goes on with a pack held past half
 * the delay), MUTANT_NO_PROGRESS_READ (a redelivered pack is handed from its start).
 */

#ifndef K
#define K 3
#endif
#ifndef L
#define L 1
#endif
#ifndef MAXD
#define MAXD 1
#endif
#ifndef CALLS
#define CALLS 4
#endif

#define NONE 255
#define YOUNG 0
#define OLD 1
#define EXPIRED 2

/* The server's side of the pack. */
bool acked = false;
byte holder = NONE;        /* the receiver the current delivery went to */
byte dc = 0;               /* delivery count */
byte age = YOUNG;          /* of the current delivery */
/* The progress bucket's key (0: absent). */
byte recorded = 0;

/* What happened to each message. */
byte handed[K];
bool committed[K];

bool inCall[2];
bool dead[2];
byte deaths = 0;

#define DIE(me) if :: deaths < MAXD -> deaths++; dead[me] = true; printf("R%d dies\n", me); goto gone :: true -> skip fi

inline hand(me, idx, mydc) {
    assert(!committed[idx]);
    assert(handed[idx] == 0 || mydc > 1);
    handed[idx]++;
    printf("R%d hands %d (delivery %d)\n", me, idx, mydc);
}

proctype receiver(byte me) {
    bool inHand = false;
    byte mydc = 0;
    byte next = 0;          /* the pack reader's index */
    byte kept = 0;         /* what this holder last recorded or read */
    byte calls = 0;
    byte n;
    bool unack;
    do
    :: calls < CALLS && !acked ->
        calls++;
        /* a call begins (claimReceiveRight; the stale check) */
        atomic { inCall[me] = true; }
        if
        :: inHand ->
#ifndef MUTANT_NO_STALE_CHECK
            if
            :: holder == me && dc == mydc && age == OLD ->
                /* NAK: delivered again at once */
                atomic { holder = NONE; printf("R%d gives the pack back\n", me) }
                inHand = false
            :: holder != me || dc != mydc || age == EXPIRED ->
                inHand = false
            :: else -> skip
            fi
#else
            skip
#endif
        :: else -> skip
        fi;
        DIE(me);
        /* fetch */
        if
        :: !inHand ->
            atomic {
                if
                :: holder == NONE && !acked ->
                    holder = me; dc++; mydc = dc; age = YOUNG; inHand = true; next = 0; kept = 0
                :: else -> skip
                fi
            }
            if
            :: inHand ->
                DIE(me);
#ifndef MUTANT_NO_PROGRESS_READ
                /* takePack: progress looked up for a redelivered pack */
                if
                :: mydc > 1 -> next = recorded; kept = recorded
                :: else -> skip
                fi;
#endif
                if
                :: next == K ->
                    /* every message handed already: only the acknowledgement was missing */
                    DIE(me);
                    atomic { acked = true; printf("R%d acknowledges the finished pack\n", me) }
                    inHand = false
                :: else -> skip
                fi
            :: else -> skip
            fi
        :: else -> skip
        fi;
        /* hand up to L messages */
        n = 0;
        unack = false;
        do
        :: inHand && n < L ->
            hand(me, next, mydc);
            next++;
            n++;
            if
            :: next == K -> unack = true; inHand = false
            :: else -> skip
            fi;
            DIE(me)
        :: else -> break
        od;
        /* end of the call: record progress of the pack in hand, then the in-progress notice */
        if
        :: inHand && next > kept ->
            atomic {
                recorded = next;
                n = 0;
                do
                :: n < next -> committed[n] = true; n++
                :: else -> break
                od;
                printf("R%d records %d\n", me, next)
            }
            kept = next;
            DIE(me);
            atomic { if :: holder == me && dc == mydc -> age = YOUNG :: else -> skip fi }
        :: else -> skip
        fi;
        /* the finished pack's (waited) acknowledgement */
        if
        :: unack ->
            atomic {
                assert(holder == me && dc == mydc);
                acked = true;
                n = 0;
                do
                :: n < K -> committed[n] = true; n++
                :: else -> break
                od;
                printf("R%d acknowledges the pack\n", me)
            }
        :: else -> skip
        fi;
        inCall[me] = false
    :: else -> break
    od;
gone:
    skip
}

/* Time passes for the current delivery while its holder is not in a call (or is dead); the
 * server redelivers an expired one. */
active proctype clock() {
end:
    do
    :: atomic { holder != NONE && !acked && (!inCall[holder] || dead[holder]) && age < EXPIRED -> age++ }
    :: atomic { holder != NONE && !acked && age == EXPIRED -> holder = NONE; printf("the server gives the pack up\n") }
    od
}

init {
    byte i = 0;
    atomic {
        run receiver(0);
        run receiver(1)
    }
    /* Both receivers done (or dead): if the pack is acknowledged, every message was handed. */
    (_nr_pr == 2);   /* init and the clock */
    if
    :: acked ->
        do
        :: i < K -> assert(handed[i] > 0); i++
        :: else -> break
        od
    :: else -> skip
    fi
}
