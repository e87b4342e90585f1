// Shared by bn_stats and bn_stats_merge: the push block and Chan's merge of (count, mean, M2).
layout(push_constant) uniform Push {
	uint n, c, hw;
	uint chunk; // values of one plane per pass-1 invocation (the last chunk of a plane may be shorter)
	uint cpp;   // chunks per plane: ceil(hw / chunk)
} pc;

// (na, ma, m2a) <- merge with (nb, mb, m2b): count, mean, sum of squared deviations.
void bn_merge(inout float na, inout float ma, inout float m2a, float nb, float mb, float m2b)
{
	if (nb == 0.0)
		return;
	float nt = na + nb, f = nb / nt, delta = mb - ma;
	ma += delta * f;
	m2a += m2b + delta * delta * na * f;
	na = nt;
}
