using Microsoft.Extensions.Options;

namespace Spegel.Hosting;

/// <summary>Options that check themselves and report every problem at once.</summary>
public interface IValidatableOptions
{
    /// <summary>Every problem found, as sentences naming the configuration key; empty when valid.</summary>
    IEnumerable<string> Validate();
}

/// <summary>Runs <see cref="IValidatableOptions.Validate"/> at start, failing with all errors together.</summary>
public sealed class AllErrorsValidator<TOptions> : IValidateOptions<TOptions>
    where TOptions : class, IValidatableOptions
{
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate().ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
