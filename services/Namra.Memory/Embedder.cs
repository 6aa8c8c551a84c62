using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;

namespace Namra.Memory;

/// <summary>Turns text into an embedding through the LLM gateway's <c>Embed</c>, with the caller's embedder settings.</summary>
internal sealed class Embedder(NamraServiceChannels channels)
{
    /// <summary>
    /// The model name the vector belongs to, the vector, and the gateway's answer (the provider requests it made and the
    /// worst case they were reserved at, for the caller's ledger), within the caller's <paramref name="budget"/>.
    /// </summary>
    public async Task<(string Model, float[] Vector, EmbedResponse Response)> EmbedAsync(LlmConfig? embedder, string model, string text, CallBudget? budget, CancellationToken cancellationToken)
    {
        if (embedder is null || embedder.Provider == LlmProvider.Unspecified)
        {
            throw new InvalidArgumentException("embedder", "Name the embedder (provider and model) or send the embedding itself.");
        }

        var llm = embedder.Clone();
        if (model.Length > 0)
        {
            llm.Model = model;
        }

        var client = new LlmGatewayService.LlmGatewayServiceClient(channels.For(Namra.Contracts.ServiceRoles.LlmGateway));
        try
        {
            var response = await client.EmbedAsync(new EmbedRequest { Llm = llm, Inputs = { text }, Budget = budget }, cancellationToken: cancellationToken).ConfigureAwait(false);
            return (llm.Model, response.Embeddings[0].Values.ToArray(), response);
        }
        catch (DownstreamException exception) when (exception.StatusCode == StatusCode.InvalidArgument)
        {
            // The embedder settings are the store's, not this call's: what the gateway refused is a precondition here.
            throw new NamraException(StatusCode.FailedPrecondition, $"The LLM gateway could not embed the text: {exception.Status.Detail}");
        }
    }
}
